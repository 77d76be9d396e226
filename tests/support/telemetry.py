"""`Recorded`: a `Telemetry` on the real OpenTelemetry SDK, with in-memory readers.

`BrokenProviders`: a `Telemetry` on providers whose every instrument raises.

No global provider is touched: each `Recorded` has providers of its own, so tests never see
each other's measurements.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NoReturn, cast

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan

from fastapi_isp_jwt.telemetry import Telemetry

Attributes = frozenset[tuple[str, object]]


def attrs(**values: object) -> Attributes:
    """An attribute set as `Recorded` keys its values."""
    return frozenset(values.items())


class Recorded:
    """A Telemetry on its own SDK providers, and what they recorded."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.telemetry = Telemetry(
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            tracer_provider=self.tracer_provider,
        )

    def metrics(self) -> dict[str, tuple[str, Metric]]:
        """Each exported metric by name, with the name of the meter that made it."""
        found: dict[str, tuple[str, Metric]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = (scope.scope.name, metric)
        return found

    def values(self, name: str) -> dict[Attributes, float]:
        """A counter's or gauge's value by attribute set (none when nothing was exported)."""
        exported = self.metrics().get(name)
        points = exported[1].data.data_points if exported else ()
        return {
            frozenset(p.attributes.items()): p.value
            for p in points
            if isinstance(p, NumberDataPoint) and p.attributes is not None
        }

    def histogram(self, name: str) -> dict[Attributes, HistogramDataPoint]:
        """A histogram's points by attribute set."""
        _, metric = self.metrics()[name]
        return {
            frozenset(p.attributes.items()): p
            for p in metric.data.data_points
            if isinstance(p, HistogramDataPoint) and p.attributes is not None
        }

    def finished(self) -> tuple[ReadableSpan, ...]:
        """The spans ended so far."""
        return self.spans.get_finished_spans()


class _Raising:
    """An instrument, meter, tracer or span whose every method raises (a broken SDK)."""

    def __getattr__(self, name: str) -> object:
        def broken(*args: object, **kwargs: object) -> NoReturn:
            raise RuntimeError(f"broken SDK: {name}")

        return broken


class _MakesRaisingInstruments:
    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: _Raising()


class BrokenProviders:
    """Meter and tracer providers whose instruments, tracer and spans all raise when used."""

    def __init__(self) -> None:
        self.meter_provider = SimpleNamespace(
            get_meter=lambda *args, **kwargs: _MakesRaisingInstruments()
        )
        self.tracer_provider = SimpleNamespace(get_tracer=lambda *args, **kwargs: _Raising())
        self.telemetry = Telemetry(
            meter_provider=cast("MeterProvider", self.meter_provider),
            tracer_provider=cast("TracerProvider", self.tracer_provider),
        )


class RecordingSpanThatRaises(NonRecordingSpan):
    """A current span that says it records, and raises when an event is added to it."""

    def __init__(self) -> None:
        super().__init__(INVALID_SPAN_CONTEXT)

    def is_recording(self) -> bool:
        return True

    def add_event(self, *args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("broken SDK: add_event")

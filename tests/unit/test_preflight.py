"""The RuntimeClass preflight names every pool that needs a missing RuntimeClass."""

from __future__ import annotations

from infra.engine.preflight import missing_runtime_classes, required_runtime_classes
from infra.pure.config import PerimeterConfig


def test_every_pool_naming_a_runtime_class_is_checked(dev_config: PerimeterConfig) -> None:
    first = dev_config.sandboxes[0]
    pools = [
        first.model_copy(update={"runtime_class_name": "gvisor"}),
        first.model_copy(update={"name": "billing", "runtime_class_name": None}),
        first.model_copy(update={"name": "exports", "runtime_class_name": "kata"}),
    ]
    config = dev_config.model_copy(update={"sandboxes": pools})
    wanted = required_runtime_classes(config)
    assert wanted == [
        ("sandboxes[0].runtime_class_name", "gvisor"),
        ("sandboxes[2].runtime_class_name", "kata"),
    ]
    (problem,) = missing_runtime_classes(wanted, {"gvisor"})
    assert problem.startswith("sandboxes[2].runtime_class_name: RuntimeClass 'kata' does not exist")

"""Multi-task blocks: shared bottom, MMoE (Ma et al. 2018) and PLE (Tang et al. 2020).

Each block takes the shared input vector and returns one vector per task, in task order.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="tfshop")
class MLP(keras.layers.Layer):
    """ReLU dense layers of ``units`` widths, one after another (an expert or a shared bottom)."""

    def __init__(self, units: list[int], **kwargs):
        super().__init__(**kwargs)
        self.units = list(units)
        self.dense = [
            keras.layers.Dense(u, activation="relu", name=f"dense_{i}") for i, u in enumerate(units)
        ]

    def call(self, x):
        for layer in self.dense:
            x = layer(x)
        return x

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.utils.register_keras_serializable(package="tfshop")
class SharedBottom(keras.layers.Layer):
    """One MLP shared by all tasks."""

    def __init__(self, num_tasks: int, units: list[int], **kwargs):
        super().__init__(**kwargs)
        self.num_tasks, self.units = num_tasks, list(units)
        self.bottom = MLP(self.units, name="bottom")

    def call(self, x):
        shared = self.bottom(x)
        return [shared] * self.num_tasks

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks, "units": self.units}


def _mix(gate_logits: tf.Tensor, experts: list[tf.Tensor]) -> tf.Tensor:
    weights = tf.nn.softmax(gate_logits, axis=-1)
    return tf.einsum("be,bed->bd", weights, tf.stack(experts, axis=1))


@keras.utils.register_keras_serializable(package="tfshop")
class MultiGateMixtureOfExperts(keras.layers.Layer):
    """MMoE: shared experts, and per task a softmax gate over them."""

    def __init__(self, num_tasks: int, num_experts: int, units: list[int], **kwargs):
        super().__init__(**kwargs)
        self.num_tasks, self.num_experts, self.units = num_tasks, num_experts, list(units)
        self.experts = [MLP(self.units, name=f"expert_{i}") for i in range(num_experts)]
        self.gates = [keras.layers.Dense(num_experts, name=f"gate_{t}") for t in range(num_tasks)]

    def call(self, x):
        experts = [expert(x) for expert in self.experts]
        return [_mix(gate(x), experts) for gate in self.gates]

    def get_config(self):
        return {
            **super().get_config(),
            "num_tasks": self.num_tasks,
            "num_experts": self.num_experts,
            "units": self.units,
        }


@keras.utils.register_keras_serializable(package="tfshop")
class ProgressiveLayeredExtraction(keras.layers.Layer):
    """PLE: levels of shared and task-specific experts; each task's gate mixes its own experts
    with the shared ones, and the shared gate (below the last level) mixes all of them."""

    def __init__(
        self,
        num_tasks: int,
        num_levels: int,
        shared_experts: int,
        task_experts: int,
        units: list[int],
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_tasks, self.num_levels = num_tasks, num_levels
        self.shared_experts, self.task_experts, self.units = shared_experts, task_experts, list(units)
        self.levels = []
        for level in range(num_levels):
            shared = [MLP(self.units, name=f"l{level}_shared_{i}") for i in range(shared_experts)]
            own = [
                [MLP(self.units, name=f"l{level}_task{t}_{i}") for i in range(task_experts)]
                for t in range(num_tasks)
            ]
            gates = [
                keras.layers.Dense(task_experts + shared_experts, name=f"l{level}_gate{t}")
                for t in range(num_tasks)
            ]
            last = level == num_levels - 1
            shared_gate = (
                None
                if last
                else keras.layers.Dense(
                    num_tasks * task_experts + shared_experts, name=f"l{level}_gate_shared"
                )
            )
            self.levels.append((shared, own, gates, shared_gate))

    def call(self, x):
        task_inputs, shared_input = [x] * self.num_tasks, x
        for shared, own, gates, shared_gate in self.levels:
            shared_out = [e(shared_input) for e in shared]
            own_out = [[e(task_inputs[t]) for e in own[t]] for t in range(self.num_tasks)]
            next_tasks = [
                _mix(gates[t](task_inputs[t]), own_out[t] + shared_out) for t in range(self.num_tasks)
            ]
            if shared_gate is not None:
                everything = [o for outs in own_out for o in outs] + shared_out
                shared_input = _mix(shared_gate(shared_input), everything)
            task_inputs = next_tasks
        return task_inputs

    def get_config(self):
        return {
            **super().get_config(),
            "num_tasks": self.num_tasks,
            "num_levels": self.num_levels,
            "shared_experts": self.shared_experts,
            "task_experts": self.task_experts,
            "units": self.units,
        }

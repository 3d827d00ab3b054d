"""Token usage of chat models, per LangGraph task, priced by a table of models.

A LangChain callback handler reads ``usage_metadata`` off every chat model's
answer and files it under the task that made the call (from the run's
``langgraph_checkpoint_ns`` metadata). Prices are per million tokens:
``{"gpt-4o": {"input": 2.5, "output": 10.0}, "*": {...}}``, ``"*"`` for any model
not listed; the model is the answer's ``response_metadata["model_name"]``, else the
model's ``ls_model_name``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

__all__ = ["Prices", "TaskUsage", "Usage"]

Prices = Mapping[str, Mapping[str, float]]
PER = 1_000_000  # prices are per million tokens


@dataclass
class TaskUsage:
    """Tokens one task's model calls used, and what they cost."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    models: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        """As the node's metrics show it."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "cost": round(self.cost, 6),
            "models": self.models,
        }


def _task_of(metadata: Mapping[str, Any] | None) -> str:
    """The id of the LangGraph task a model was called from ("" outside any)."""
    namespace = str((metadata or {}).get("langgraph_checkpoint_ns", ""))
    return namespace.rsplit("|", 1)[-1].rsplit(":", 1)[-1]


class Usage(BaseCallbackHandler):
    """Collects token usage by task id; :meth:`take` hands a task's total over once.

    Runs inline (no executor hop) and under a lock: sync nodes call models from
    worker threads.
    """

    run_inline = True
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, prices: Prices) -> None:
        self.prices = prices
        self._lock = threading.Lock()
        self._calls: dict[UUID, tuple[str, str]] = {}  # run id -> (task id, model)
        self._tasks: dict[str, TaskUsage] = {}

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember which task called, and the model's own name if it says."""
        model = str((metadata or {}).get("ls_model_name") or "")
        with self._lock:
            self._calls[run_id] = (_task_of(metadata), model)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """File the answer's token usage under its task, priced."""
        with self._lock:
            task_id, model = self._calls.pop(run_id, ("", ""))
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                usage = getattr(message, "usage_metadata", None)
                if usage:
                    named = getattr(message, "response_metadata", {}).get("model_name")
                    self._add(task_id, str(named or model or "*"), usage)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A failed call used nothing we can see."""
        with self._lock:
            self._calls.pop(run_id, None)

    def _add(self, task_id: str, model: str, usage: Mapping[str, Any]) -> None:
        price = self.prices.get(model) or self.prices.get("*") or {}
        tokens_in = int(usage.get("input_tokens", 0))
        tokens_out = int(usage.get("output_tokens", 0))
        cost = (tokens_in * price.get("input", 0.0) + tokens_out * price.get("output", 0.0)) / PER
        with self._lock:
            total = self._tasks.setdefault(task_id, TaskUsage())
            total.input_tokens += tokens_in
            total.output_tokens += tokens_out
            total.cost += cost
            if model not in total.models:
                total.models.append(model)

    def take(self, task_id: str) -> TaskUsage | None:
        """The usage filed under ``task_id`` since the last take, if any."""
        with self._lock:
            return self._tasks.pop(task_id, None)

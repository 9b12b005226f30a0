"""The collaborative optimizer for PyTorch (the reference's ``hivemind.Optimizer``), and a DiLoCo mode.

The protocol runs in the trainer's averager (``/v1/runs/{run}``, see openapi/averager.yaml); this module is
the trainer's side. After each batch ``step()`` reports the samples processed to the averager, which
publishes them in the DHT and answers what to do:

- ``accumulate``: keep going (gradients are summed, weighted by batch size, until the epoch ends);
- ``step``: the run processed ``target_batch_size`` samples: submit the epoch's mean gradients, get the
  run's samples-weighted average back (every trainer gets the same), and take one optimizer step with it;
- ``load_state``: this trainer joined late or fell behind: load the parameters and optimizer state that
  peers share (``load_state_from_peers``) and continue at the run's epoch.

With ``delay_grad_averaging=True`` (the reference's delayed updates) an epoch's averaging runs in a background
thread while the trainer computes the next epoch's gradients, and its optimizer step is applied when it is
there, one epoch late at most: compute and network overlap, at the price of gradients one step stale.

With ``use_local_updates=True`` the inner optimizer steps on every batch and the parameters (and the
optimizer statistics named in ``average_opt_statistics``) are averaged at each epoch's end instead.
:class:`DiLoCoOptimizer` takes H local steps, then averages the pseudo-gradients (start minus end
parameters) through the run and takes an outer Nesterov SGD step, so trainers average every H steps.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .averager import AveragerClient
from .codecs import check_codec
from .errors import MeshError
from .state import apply_state, decode_state, encode_state, restore_optimizer, tensors_of_optimizer
from .transport import URLs

logger = logging.getLogger("hivemind_mesh.optim")

OptimizerFactory = Callable[[Iterable[torch.Tensor]], torch.optim.Optimizer]
Params = Union[Iterable[torch.Tensor], Iterable[Tuple[str, torch.Tensor]], None]


def _named_parameters(params: Params, optimizer: Union[torch.optim.Optimizer, OptimizerFactory]) -> Tuple[Dict[str, torch.Tensor], torch.optim.Optimizer]:
    """The inner optimizer and its parameters by name (given names, else ``param.<i>`` in the optimizer's order)."""
    items = list(params) if params is not None else None
    named = items is not None and all(isinstance(item, tuple) for item in items)
    tensors = [p for _, p in items] if named else items
    if isinstance(optimizer, torch.optim.Optimizer):
        inner = optimizer
    else:
        if tensors is None:
            raise ValueError("give params when optimizer is a factory, e.g. params=model.parameters(), optimizer=lambda p: torch.optim.Adam(p)")
        inner = optimizer(tensors)
    ordered = [p for group in inner.param_groups for p in group["params"]]
    names = {id(p): name for name, p in items} if named else {}
    return {names.get(id(p), f"param.{i}"): p for i, p in enumerate(ordered)}, inner


class Optimizer:
    """Trains with the run's other trainers through an averager, as ``hivemind.Optimizer`` does through the DHT.

    Args (the reference's, where they apply):
        run_id: the run's name, shared by its trainers (letters, digits, ``_``, ``-``).
        target_batch_size: samples the whole run processes per epoch (one collaborative step).
        optimizer: a torch optimizer, or a factory called with ``params``.
        params: the parameters (``model.parameters()`` or ``model.named_parameters()``; names make shared states
            readable), needed when ``optimizer`` is a factory.
        averager: the trainer's averager URL (instead of the reference's ``dht``).
        batch_size_per_step: samples per ``step()`` unless ``step(batch_size=...)`` says otherwise.
        scheduler: a learning-rate scheduler or a factory called with the optimizer; stepped once per epoch.
        use_local_updates: step on every batch, average parameters at each epoch's end.
        averaging_timeout: seconds an epoch's all-reduce may take to find and average with peers.
        load_state_timeout: seconds to download peers' state.
        grad_compression: codec of the averaged gradients (``"float16"``, ``"uniform_8bit"``...; see codecs.CODECS).
        state_averaging_compression: codec of the averaged parameters in local-updates mode.
        load_state_compression: codec of the state downloaded from a peer (float32 tensors of 1024 values or more;
            the rest travels exact, Adam's second moments included).
        average_opt_statistics: optimizer state keys (e.g. ``("exp_avg_sq",)``) averaged with the parameters
            in local-updates mode.
        delay_grad_averaging: average each epoch's gradients in the background while the next epoch computes,
            and take its optimizer step when the average arrives (or when the next epoch has its samples, whichever
            comes first); gradients-mode only.
        delay_optimizer_step: the reference's companion flag; here the optimizer step is local and takes no network
            time, so it is implied by ``delay_grad_averaging`` and changes nothing alone.
        client_mode: if given, checked against the averager's mode (start it with ``--mode client``).
        matchmaking_time: accepted for compatibility; matchmaking is the averager's ``--min-matchmaking-time``.
        tracker_opts: the run's ``metadata_expiration``, ``min_refresh_period``, ``max_refresh_period``.
        trainer: this trainer's name in the run (default: random).
        verbose: log each epoch at INFO (logger ``hivemind_mesh.optim``).
    """

    def __init__(self, *, run_id: str, target_batch_size: int, optimizer: Union[torch.optim.Optimizer, OptimizerFactory],
                 averager: Union[URLs, AveragerClient], params: Params = None, batch_size_per_step: Optional[int] = None,
                 scheduler: Any = None, use_local_updates: bool = False, averaging_timeout: float = 30.0,
                 load_state_timeout: float = 60.0, grad_compression: str = "none", state_averaging_compression: str = "none",
                 load_state_compression: str = "none", average_opt_statistics: Sequence[str] = (), delay_grad_averaging: bool = False,
                 delay_optimizer_step: Optional[bool] = None, client_mode: Optional[bool] = None,
                 matchmaking_time: Optional[float] = None, tracker_opts: Optional[Mapping[str, float]] = None,
                 trainer: Optional[str] = None, verbose: bool = False) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", run_id):
            raise ValueError(f"run_id is 1 to 100 letters, digits, '_' or '-', got {run_id!r}")
        self.run_id, self.target_batch_size, self.batch_size_per_step = run_id, target_batch_size, batch_size_per_step
        self.named_parameters, self.opt = _named_parameters(params, optimizer)
        self.scheduler = scheduler(self.opt) if callable(scheduler) and not hasattr(scheduler, "step") else scheduler
        self.use_local_updates, self.average_opt_statistics = use_local_updates, tuple(average_opt_statistics)
        if delay_grad_averaging and use_local_updates:
            raise ValueError("delay_grad_averaging overlaps gradient averaging with compute; it cannot be used with use_local_updates")
        if delay_grad_averaging and delay_optimizer_step is False:
            raise ValueError("delay_grad_averaging applies the optimizer step late, so it needs delay_optimizer_step (leave it unset)")
        if delay_optimizer_step and not delay_grad_averaging:
            logger.info("delay_optimizer_step alone changes nothing here: the optimizer step is local; set delay_grad_averaging to overlap")
        self.delay_grad_averaging = delay_grad_averaging
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hivemind-mesh-averaging") if delay_grad_averaging else None
        self._pending: Optional[Future] = None
        self.averaging_timeout, self.load_state_timeout = averaging_timeout, load_state_timeout
        self.grad_compression, self.state_averaging_compression = check_codec(grad_compression), check_codec(state_averaging_compression)
        self.load_state_compression = check_codec(load_state_compression)
        self.client = averager if isinstance(averager, AveragerClient) else AveragerClient(averager)
        self.trainer = trainer or f"trainer-{uuid.uuid4().hex[:10]}"
        self.tracker_opts = dict(tracker_opts or {})
        self.verbose = verbose
        self.local_epoch = 0
        #: Epochs ended together with other averagers' trainers (an all-reduce took place).
        self.averaging_rounds = 0
        self._samples = 0
        self._grad_sums: Dict[str, torch.Tensor] = {}
        self._samples_per_second = 0.0
        self._last_report = time.monotonic()
        self._loss: Optional[float] = None
        if matchmaking_time is not None:
            logger.info("matchmaking_time is the averager's --min-matchmaking-time; this trainer's value is not used")
        if client_mode is not None:
            mode = self.client.info().get("mode")
            if (mode == "client") != client_mode:
                raise ValueError(f"client_mode={client_mode}, but the averager at {self.client.url} runs in mode {mode!r}; "
                                 "start it with --mode client (or node)")
        self._configure()
        self._report()  # the run knows this trainer from now on; a late one loads the peers' state before its first batch

    # ---- the reference's interface ----

    @property
    def param_groups(self) -> List[Dict[str, Any]]:
        return self.opt.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Optional[Callable[[], Any]] = None, batch_size: Optional[int] = None,
             loss: Optional[float] = None) -> Any:
        """Counts a batch whose gradients are in ``.grad``; ends the epoch with the run when the averager says so.

        ``closure`` (re-evaluates the loss with gradients) and ``loss`` (a float) are published with the progress.
        """
        result = None
        if closure is not None:
            with torch.enable_grad():
                result = closure()
        batch = batch_size or self.batch_size_per_step
        if not batch:
            raise ValueError("give step(batch_size=N) or batch_size_per_step")
        if loss is not None or torch.is_tensor(result):
            value = float(loss if loss is not None else result)
            self._loss = value if self._loss is None else 0.9 * self._loss + 0.1 * value
        self._accumulate(batch)
        self._samples += batch
        now = time.monotonic()
        rate = batch / max(now - self._last_report, 1e-6)
        self._samples_per_second = rate if self._samples_per_second == 0 else 0.9 * self._samples_per_second + 0.1 * rate
        self._last_report = now
        if self._pending is not None:
            # The last epoch still averages in the background: keep computing until it is there, or until this
            # epoch has its samples (then wait), so that parameters are never more than one step stale.
            if not self._pending.done() and self._samples < self.target_batch_size:
                return result
            self._finish_pending()
        self._after_batch(self._report())
        return result

    @property
    def averaging_in_background(self) -> bool:
        """With ``delay_grad_averaging``: whether the last epoch's averaging has not been applied yet."""
        return self._pending is not None

    def load_state_from_peers(self, epoch: Optional[int] = None) -> bool:
        """Replaces parameters, optimizer and scheduler state with the newest a peer shares; False if none does."""
        try:
            loaded = self.client.load_state(self.state_prefix, timeout=self.load_state_timeout, codec=self.load_state_compression)
        except MeshError as error:
            logger.warning("[%s] cannot load the peers' state: %s", self.trainer, error)
            loaded = None
        if loaded is None:
            logger.warning("[%s] behind the run, but no peer shares its state yet", self.trainer)
        else:
            tensors, metadata = decode_state(loaded[0], self.named_parameters)
            state_epoch = apply_state(tensors, metadata, self.named_parameters, self.opt, self.scheduler)
            self._restore_extra(tensors)
            epoch = max(epoch or 0, state_epoch)
            self._log("loaded the state of epoch %d from %s", state_epoch, loaded[1])
        self._new_epoch(epoch if epoch is not None else self.local_epoch)
        return loaded is not None

    def state_dict(self) -> Dict[str, Any]:
        return {"parameters": {name: p.detach().clone() for name, p in self.named_parameters.items()},
                "optimizer": self.opt.state_dict(), "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "local_epoch": self.local_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for name, p in self.named_parameters.items():
                p.copy_(state["parameters"][name])
        self.opt.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self._new_epoch(int(state["local_epoch"]))

    def shutdown(self) -> None:
        """Applies an epoch still averaging in the background, then leaves the run, so that no peer waits for this trainer."""
        if self._pending is not None:
            self._finish_pending()
        if self._background is not None:
            self._background.shutdown(wait=False)
        try:
            self.client.leave_run(self.run_id, self.trainer)
        except MeshError as error:
            logger.warning("[%s] could not leave run %s: %s", self.trainer, self.run_id, error)

    def __enter__(self) -> "Optimizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def state_prefix(self) -> str:
        """Where the run's trainers share their state (the Swift and numpy trainers use the same)."""
        return f"{self.run_id}_state"

    # ---- the run protocol ----

    def _configure(self) -> None:
        try:
            self.client.configure_run(self.run_id, self.target_batch_size, averaging_timeout=self.averaging_timeout, **self.tracker_opts)
        except MeshError as error:
            if not error.retryable:
                raise
            logger.warning("[%s] cannot configure run %s: %s; training alone until the averager answers", self.trainer, self.run_id, error)

    def _report(self) -> str:
        """The averager's answer to this trainer's progress: accumulate, step, load_state, or local (no answer, epoch full)."""
        try:
            answer = self.client.report_progress(self.run_id, self.trainer, self.local_epoch, self._samples,
                                                 samples_per_second=self._samples_per_second, loss=self._loss)
        except MeshError as error:
            if error.status in (404, 409):
                # The averager restarted (it forgot the run) or the run is behind this trainer: join again from epoch 0.
                logger.warning("[%s] the averager lost track of this trainer (%s); joining the run again", self.trainer, error.message)
                self._configure()
                self._new_epoch(0)
                return "accumulate"
            logger.warning("[%s] progress not reported: %s", self.trainer, error)
            return "local" if self._samples >= self.target_batch_size else "accumulate"
        if answer["action"] == "load_state":
            self.load_state_from_peers(answer["epoch"])
            return "loaded"
        return answer["action"]

    def _accumulate(self, batch: int) -> None:
        if self.use_local_updates:
            self.opt.step()
            return
        with torch.no_grad():
            for name, p in self.named_parameters.items():
                if p.grad is not None:
                    total = self._grad_sums.get(name)
                    self._grad_sums[name] = p.grad * batch if total is None else total.add_(p.grad, alpha=batch)

    def _after_batch(self, action: str) -> None:
        if action not in ("step", "local"):
            return
        if self.use_local_updates:
            tensors = {name: p.detach() for name, p in self.named_parameters.items()}
            tensors.update(self._statistics())
            codec = self.state_averaging_compression
        else:
            tensors = {name: (self._grad_sums[name] / max(self._samples, 1)) if name in self._grad_sums else torch.zeros_like(p)
                       for name, p in self.named_parameters.items()}
            codec = self.grad_compression
        if self.delay_grad_averaging:
            # The epoch's gradients go to the background; this epoch's sums start over for the next one at once.
            epoch, samples = self.local_epoch, self._samples
            self._samples, self._grad_sums = 0, {}
            self._pending = self._background.submit(self._average, tensors, codec, action == "local", epoch, samples)
            return
        averaged, epoch = self._average(tensors, codec, alone=action == "local")
        self._apply(averaged)
        self._new_epoch(epoch)
        self._share_state()

    def _finish_pending(self) -> None:
        """Applies the epoch that averaged in the background; the next epoch's gradients, already summed, stay."""
        averaged, epoch = self._pending.result()
        self._pending = None
        self._apply(averaged)
        self.local_epoch = epoch
        self._share_state()

    def _apply(self, averaged: Mapping[str, torch.Tensor]) -> None:
        """The epoch's end: the averaged parameters, or an optimizer step with the averaged gradients."""
        with torch.no_grad():
            if self.use_local_updates:
                for name, p in self.named_parameters.items():
                    p.copy_(averaged[name])
                self._load_statistics(averaged)
            else:
                for name, p in self.named_parameters.items():
                    p.grad = averaged[name].to(p.dtype)
                self.opt.step()
                self.opt.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()

    def _average(self, tensors: Mapping[str, torch.Tensor], codec: str, alone: bool, epoch: Optional[int] = None,
                 samples: Optional[int] = None) -> Tuple[Dict[str, torch.Tensor], int]:
        """The run's samples-weighted average of an epoch's tensors (this one unless given) and the next epoch
        (our own tensors when alone)."""
        epoch = self.local_epoch if epoch is None else epoch
        samples = self._samples if samples is None else samples
        if not alone:
            arrays = {name: t.detach().cpu().float().numpy() for name, t in tensors.items()}
            try:
                result = self.client.step(self.run_id, self.trainer, epoch, samples, arrays, codec=codec,
                                          averaging_timeout=self.averaging_timeout)
                self.averaging_rounds += int(result.averaged)
                self._log("epoch %d ended (%s, %s trainers' samples)", epoch, result.record.get("outcome"), result.record.get("samples"))
                return {name: torch.from_numpy(result.tensors[name]) for name in tensors}, result.epoch
            except MeshError as error:
                logger.warning("[%s] epoch %d ended alone: %s", self.trainer, epoch, error)
        return {name: t.detach().clone() for name, t in tensors.items()}, epoch + 1

    def _share_state(self) -> None:
        """Offers the state to trainers that join later; they prefer the highest epoch."""
        try:
            body = encode_state(self.named_parameters, self.opt, epoch=self.local_epoch, scheduler=self.scheduler, extra=self._extra_state())
            self.client.share_state(body, self.state_prefix, priority=self.local_epoch)
        except MeshError as error:
            logger.debug("[%s] state not shared: %s", self.trainer, error)

    def _new_epoch(self, epoch: int) -> None:
        self.local_epoch, self._samples, self._grad_sums = epoch, 0, {}

    def _statistics(self) -> Dict[str, torch.Tensor]:
        """The optimizer statistics averaged with the parameters (local-updates mode)."""
        names = {p: name for name, p in self.named_parameters.items()}
        return {f"optimizer.{key}.{names[p]}": value for p, state in self.opt.state.items()
                for key, value in state.items() if key in self.average_opt_statistics and torch.is_tensor(value)}

    def _load_statistics(self, averaged: Mapping[str, torch.Tensor]) -> None:
        for name, value in self._statistics().items():
            value.copy_(averaged[name].to(value.dtype))

    def _extra_state(self) -> Dict[str, np.ndarray]:
        return {}

    def _restore_extra(self, tensors: Mapping[str, np.ndarray]) -> None:
        pass

    def _log(self, message: str, *args: Any) -> None:
        logger.log(logging.INFO if self.verbose else logging.DEBUG, f"[{self.trainer}] " + message, *args)


class DiLoCoOptimizer(Optimizer):
    """DiLoCo (Douillard et al., 2023) through the run: ``local_steps`` (H) steps of the inner optimizer on
    every ``step()``, then the pseudo-gradients (parameters at the round's start minus now) are averaged with
    the run's trainers, weighted by samples, and an outer SGD step with Nesterov momentum is taken from the
    round's start (defaults from the paper: outer lr 0.7, momentum 0.9). Trainers average once every H steps.

    Progress is still reported after each step (a local call to the trainer's averager), so a late trainer is
    told to load the state; the run's ``target_batch_size`` defaults to one trainer's H steps of
    ``batch_size_per_step``. ``grad_compression`` compresses the pseudo-gradients.
    """

    def __init__(self, *, run_id: str, optimizer: Union[torch.optim.Optimizer, OptimizerFactory], averager: Union[URLs, AveragerClient],
                 local_steps: int, params: Params = None, outer_lr: float = 0.7, outer_momentum: float = 0.9, nesterov: bool = True,
                 batch_size_per_step: Optional[int] = None, target_batch_size: Optional[int] = None, **kwargs: Any) -> None:
        if local_steps < 1:
            raise ValueError(f"local_steps (H) must be at least 1, got {local_steps}")
        if kwargs.get("use_local_updates") is False:
            raise ValueError("DiLoCo always steps locally: use_local_updates cannot be False")
        kwargs.pop("use_local_updates", None)
        self.local_steps = local_steps
        self._inner_steps = 0
        # The outer optimizer exists before the base class reports to the run, which may load a peer's state into it.
        named, inner = _named_parameters(params, optimizer)
        self.outer = torch.optim.SGD(list(named.values()), lr=outer_lr, momentum=outer_momentum, nesterov=nesterov)
        self._start = {name: p.detach().clone() for name, p in named.items()}
        super().__init__(run_id=run_id, optimizer=inner, averager=averager, params=list(named.items()), batch_size_per_step=batch_size_per_step,
                         target_batch_size=target_batch_size or local_steps * (batch_size_per_step or 1), use_local_updates=True, **kwargs)

    @property
    def inner_steps(self) -> int:
        """Inner steps taken since the last outer step (0 right after one: the parameters are the averaged ones)."""
        return self._inner_steps

    def _after_batch(self, action: str) -> None:
        if action == "loaded":
            return
        self._inner_steps += 1
        if self._inner_steps < self.local_steps:
            return
        deltas = {name: self._start[name] - p.detach() for name, p in self.named_parameters.items()}
        averaged, epoch = self._average(deltas, self.grad_compression, alone=False)
        with torch.no_grad():
            for name, p in self.named_parameters.items():
                p.copy_(self._start[name])
                p.grad = averaged[name].to(p.dtype)
        self.outer.step()
        for p in self.named_parameters.values():
            p.grad = None
        self._new_epoch(epoch)
        self._share_state()

    def _new_epoch(self, epoch: int) -> None:
        super()._new_epoch(epoch)
        self._inner_steps = 0
        self._start = {name: p.detach().clone() for name, p in self.named_parameters.items()}

    def _extra_state(self) -> Dict[str, np.ndarray]:
        names = {p: name for name, p in self.named_parameters.items()}
        return tensors_of_optimizer(self.outer, names, "outer")

    def _restore_extra(self, tensors: Mapping[str, np.ndarray]) -> None:
        names = {p: name for name, p in self.named_parameters.items()}
        restore_optimizer(self.outer, tensors, names, "outer", None)

    def state_dict(self) -> Dict[str, Any]:
        return dict(super().state_dict(), outer=self.outer.state_dict())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.outer.load_state_dict(state["outer"])

"""Training across a torch.distributed process group: one model over all ranks.

Torch only. When a fit runs inside an initialised default process group (as
under ``torchrun``), every rank passes the rows it holds and all ranks train
one model: `across_ranks` opens a group of skae's own over the same ranks (with the
stated `TIMEOUT`), and while it is open the functions that compute a statistic
over rows (PCA's moments, column means, validation scores, explained variance,
the never-worse comparison) add up their sums over the ranks through
`all_sum`, so that every rank computes the same numbers from all the rows.
Gradients are averaged by `torch.nn.parallel.DistributedDataParallel`.
Outside such a group every function here is the identity.
"""

import contextlib
import contextvars
import datetime

import torch

# How long a rank waits in a collective for the others before it gives up: a
# rank that died is noticed at once (its connections close), one that stopped
# answering (a hung callback, a Ctrl-C caught and ignored) after this long.
TIMEOUT = datetime.timedelta(seconds=120)
SETTINGS = ("auto", True, False)

_current = contextvars.ContextVar("skae_process_group", default=None)


class PeerFailure(RuntimeError):
    """Another rank of the process group failed, left, or stopped answering."""


class Group:
    """skae's process group over the ranks of the default one."""

    def __init__(self, process_group, rank, world_size, device):
        self.process_group = process_group
        self.rank = rank
        self.world_size = world_size
        # Where collectives run: the CPU for gloo, the GPU for NCCL.
        self.device = device

    @classmethod
    def open(cls):
        """Create the group over every rank of the default group (collective)."""
        import torch.distributed as dist

        backend = dist.get_backend()
        try:
            group = dist.new_group(backend=backend, timeout=TIMEOUT)
        except (RuntimeError, ValueError) as error:
            raise peer_failure(dist.get_rank(), error) from error
        device = torch.device("cpu")
        if backend == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        return cls(group, dist.get_rank(), dist.get_world_size(), device)

    def close(self):
        """Release the group's connections."""
        import gc

        import torch.distributed as dist

        # DistributedDataParallel wrappers can hold the group in reference
        # cycles: collect them first, so that none outlives it.
        gc.collect()
        with contextlib.suppress(Exception):
            dist.destroy_process_group(self.process_group)

    def sum(self, values):
        """Return the float64 tensor `values` summed over the ranks."""
        import torch.distributed as dist

        buffer = values.detach().to(self.device, torch.float64).contiguous()
        with self.failures():
            dist.all_reduce(buffer, group=self.process_group)
        return buffer.to(values.device)

    def broadcast(self, value):
        """Return rank 0's `value` (any picklable object) on every rank."""
        import torch.distributed as dist

        box = [value]
        with self.failures():
            dist.broadcast_object_list(
                box, src=self._global(0), group=self.process_group, device=self.device
            )
        return box[0]

    def gather(self, value):
        """Return every rank's `value` (picklable), in rank order, on every rank."""
        import torch.distributed as dist

        values = [None] * self.world_size
        with self.failures():
            dist.all_gather_object(values, value, group=self.process_group)
        return values

    def any(self, flag):
        """Whether `flag` is true on any rank."""
        return bool(self.sum(torch.tensor([float(bool(flag))])) > 0)

    def copy_parameters(self, modules):
        """Give every rank rank 0's parameters of `modules`, in place."""
        import torch.distributed as dist

        with self.failures(), torch.no_grad():
            for module in modules:
                for tensor in module.parameters():
                    # Through a buffer on the collectives' device (gloo: CPU).
                    buffer = tensor.detach().to(self.device).contiguous()
                    dist.broadcast(
                        buffer, src=self._global(0), group=self.process_group
                    )
                    tensor.copy_(buffer)

    def check_same(self, what):
        """Raise on every rank unless every rank's `what` (a dict) is the same.

        `what` describes the call on this rank (its parameters, the kind and
        width of its rows); the error names what differs, rank by rank.
        """
        every = self.gather(what)
        differing = sorted(
            name
            for name in what
            if any(other.get(name) != what[name] for other in every)
        )
        if differing:
            listed = "; ".join(
                f"{name}: "
                + ", ".join(
                    f"rank {r} {other.get(name)!r}" for r, other in enumerate(every)
                )
                for name in differing
            )
            raise ValueError(
                "The ranks of this distributed fit were called differently, and "
                "they must make the same call with the same parameters on rows "
                f"of the same kind: {listed}."
            )

    def data_parallel(self, module):
        """Wrap `module` in DistributedDataParallel over this group."""
        from torch.nn.parallel import DistributedDataParallel

        with self.failures():
            # The modules hold no buffers: only the parameters, which the
            # wrapper copies from rank 0 now and averages the gradients of.
            return DistributedDataParallel(
                module,
                process_group=self.process_group,
                device_ids=None if self.device.type == "cpu" else [self.device],
            )

    @contextlib.contextmanager
    def failures(self):
        """Turn a failed collective into a `PeerFailure` that says what to do."""
        try:
            yield
        except (RuntimeError, ValueError) as error:
            if isinstance(error, PeerFailure):
                raise
            raise peer_failure(self.rank, error) from error

    def _global(self, group_rank):
        import torch.distributed as dist

        return dist.get_global_rank(self.process_group, group_rank)


def peer_failure(rank, error):
    """Return the `PeerFailure` that reports `error` on `rank`."""
    return PeerFailure(
        f"Distributed training failed on rank {rank}: another rank failed, "
        "was interrupted or stopped answering (skae waits "
        f"{TIMEOUT.total_seconds():.0f} s for the others). The model on this "
        "rank is left as it was before the call; restart every rank, resuming "
        f"from a Checkpoint if you saved one. The collective said: {error}"
    )


def check_setting(setting):
    """Refuse a value of ``distributed`` that is not one of SETTINGS."""
    if isinstance(setting, str) and setting == "auto":
        return
    if setting is True or setting is False:
        return
    raise ValueError(
        f"distributed={setting!r} is not one of 'auto', True, False: 'auto' "
        "trains across the ranks of an initialised default process group, "
        "True requires one, False trains on this process's rows alone."
    )


def default_group_size():
    """Ranks of the initialised default process group, or 0 when there is none."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0
    return dist.get_world_size()


@contextlib.contextmanager
def across_ranks(setting):
    """Run the block across the default group's ranks, as `setting` says.

    Yields the `Group`, or None when this fit trains on its own rows: with
    ``setting=False``, or "auto" without an initialised default group of two
    ranks or more. ``True`` without one is refused. Every rank must enter.
    """
    check_setting(setting)
    ranks = 0 if setting is False else default_group_size()
    if setting is True and ranks == 0:
        raise ValueError(
            "distributed=True needs an initialised default process group: "
            "launch the script with torchrun (or skae.dask.fit_distributed), or "
            "call torch.distributed.init_process_group first. Use "
            "distributed='auto' to train alone when there is none."
        )
    if ranks < 2:
        yield None
        return
    if _current.get() is not None:
        # A fit inside a fit: one group.
        yield _current.get()
        return
    group = Group.open()
    token = _current.set(group)
    try:
        yield group
    finally:
        _current.reset(token)
        group.close()


def current():
    """Return the open `Group`, or None when this fit trains alone."""
    return _current.get()


def any_rank(flag):
    """Whether `flag` holds on any rank (on this one, alone)."""
    group = _current.get()
    return bool(flag) if group is None else group.any(flag)


def writes_files():
    """Whether this process writes the fit's files: alone, or as rank 0."""
    group = _current.get()
    return group is None or group.rank == 0


def all_sum(values):
    """Return the tensor `values` summed over the ranks (itself when alone)."""
    group = _current.get()
    if group is None:
        return values
    return group.sum(values).to(values.dtype)


def all_sum_floats(*numbers):
    """Return Python floats summed over the ranks (themselves when alone)."""
    group = _current.get()
    if group is None:
        return numbers
    summed = group.sum(torch.tensor(numbers, dtype=torch.float64))
    return tuple(float(x) for x in summed)


@contextlib.contextmanager
def alone():
    """Run the block on this rank's rows only (no collective), even across ranks."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


def is_collective_failure(error):
    """Whether `error` came from a collective that a peer broke (not skae's own)."""
    import torch.distributed as dist

    if isinstance(error, PeerFailure):
        return False
    kinds = tuple(
        getattr(dist, name)
        for name in ("DistError", "DistBackendError", "DistNetworkError")
        if hasattr(dist, name)
    )
    if kinds and isinstance(error, kinds):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        marker in text
        for marker in (
            "Connection closed",
            "Connection reset",
            "Timed out",
            "timed out",
            "Broken pipe",
            "gloo",
            "NCCL",
        )
    )

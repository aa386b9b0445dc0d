"""What a fit prints: one line per epoch, and a tqdm bar over each epoch's batches."""

import sys


def report_epoch(record, stop, stopping):
    """Print one epoch's line (and why training stops, when it does)."""
    validation = (
        ""
        if record.validation_loss is None
        else f", validation loss = {record.validation_loss:.6f}"
    )
    print_progress_line(
        f"Epoch {record.epoch + 1}, loss = {record.train_loss:.6f}"
        f"{validation}, {record.seconds:.2f} s"
    )
    if stop and stopping.stopped:
        print_progress_line(stopping.message)


def batch_progress_bar(max_iter, epoch, n_batches):
    """Return a tqdm bar over one epoch's batches, or a silent stand-in."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(
        total=n_batches,
        desc=f"Epoch {epoch + 1}/{max_iter}",
        unit="batch",
        leave=False,
    )


def print_progress_line(line):
    """Print a line without breaking a tqdm bar that may be on screen."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print(line)
    else:
        tqdm.write(line, file=sys.stdout)


class _NoProgress:
    """Stands in for a progress bar when tqdm is missing."""

    def update(self, n):
        pass

    def close(self):
        pass

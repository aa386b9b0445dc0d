"""
Train across processes with torchrun
====================================

One model, trained by several processes, each on its own share of the rows::

    torchrun --nproc-per-node 2 examples/train_torchrun.py

torchrun starts the processes and sets the variables that
``torch.distributed.init_process_group`` reads. Each rank then calls ``fit``
with the rows it holds (here every second row of the MNIST sample shipped with
skae, from its rank on); ``MLPAutoencoder(distributed="auto")`` sees the
process group, and all ranks train one model through DistributedDataParallel.
Every rank ends with the same weights, which the script checks. Run as a plain
script, it trains on all the rows in one process. gloo runs on CPUs; on GPUs,
use the nccl backend and ``device="cuda"`` with one GPU per rank.
"""

import hashlib
import os

import numpy as np
import torch.distributed as dist
from sklearn.model_selection import train_test_split

from skae import MLPAutoencoder
from skae.datasets import load_mnist_sample

if "RANK" in os.environ and not dist.is_initialized():
    dist.init_process_group("gloo")
rank = dist.get_rank() if dist.is_initialized() else 0
world_size = dist.get_world_size() if dist.is_initialized() else 1

X, _ = load_mnist_sample()
X_train, X_test = train_test_split(X, test_size=1000, random_state=0)
fast = os.environ.get("SKAE_EXAMPLES_FAST")
epochs = 2 if fast else 18
mine = X_train[rank::world_size]  # this rank's rows

model = MLPAutoencoder(30, max_iter=epochs, random_state=0).fit(mine)
error = float(np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2))
weights = hashlib.sha256(
    b"".join(p.detach().numpy().tobytes() for p in model.encoder_.parameters())
).hexdigest()[:12]
line = f"rank {rank} of {world_size}: {len(mine)} rows, weights {weights}, "
# One write, newline included: the ranks share stdout.
print(line + f"test MSE {error:.5f}\n", end="", flush=True)
if dist.is_initialized():
    every = [None] * world_size
    dist.all_gather_object(every, weights)
    if rank == 0:
        print(f"the same model on every rank: {len(set(every)) == 1}")
    dist.destroy_process_group()

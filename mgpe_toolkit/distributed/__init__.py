"""Work spread over several processes: training on several GPUs (torchrun glue, a launcher) and batch editing
on Ray (`ray_batch`).

Training: `ddp` joins the process group torchrun (or `launch`) describes in the environment, shards each step's
batch and holds the few collectives the trainers need; `batchnorm` syncs batch-norm statistics where torch's
SyncBatchNorm cannot (CPU); `launch` starts one process per GPU for `mgpe train --gpus N`.
"""

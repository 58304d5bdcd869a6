#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py args...]
# Runs tools/train.py under torchrun, one process per GPU; on a machine without GPUs,
# one CPU process each (gloo). Settings from the environment:
#   NNODES, NODE_RANK, MASTER_ADDR, PORT  several nodes: run this on each node with
#       NODE_RANK 0..NNODES-1 and node 0's address and port (default: one node)
#   MAX_RESTARTS  after a failure torchrun restarts the workers up to this many times,
#       and tools/train.py resumes from the work dir's last checkpoint (default: 0)
CONFIG=$1
GPUS=$2
if ! [[ "$GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "tools/dist_train.sh: GPUS=${GPUS@Q} (the second argument) must be the number of" \
         "processes per node, an integer >= 1; usage: tools/dist_train.sh CONFIG GPUS [args]" >&2
    exit 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
MAX_RESTARTS=${MAX_RESTARTS:-0}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    --max-restarts=$MAX_RESTARTS \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"

"""The tiny GRPO run the multi-process test launches: a demo tokenizer, the tiny model, a
reference policy at 0.9x the initial weights (a non-zero KL), two cycling batches of four prompts
(test_grpo's), `loop.train` on a data-parallel mesh over every device of every process.

    python -m tests.train.grpo_tiny --workdir W --steps N [--micro-batches M]
        [--coordinator 127.0.0.1:PORT --num-processes 2 --process-id I]

Prints, on process 0, one JSON line: every step's rollout (the sampled completion tokens of all
prompts, gathered from every process); the per-step metrics are in W/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json

PROMPTS, GROUP, NEW_TOKENS = 4, 4, 12


class LocalPrompts:
    """This process's `rows` (all: `slice(None)`) of two cycling global prompt batches; checkpointable
    like Grain's iterator."""

    def __init__(self, cfg, rows: slice):
        from tests.train.test_grpo import prompt_batch  # noqa: PLC0415
        self.batches = [{k: v[rows] for k, v in prompt_batch(cfg, seed).items()} for seed in range(2)]
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.position += 1
        return self.batches[(self.position - 1) % 2]

    def get_state(self):
        return {"position": self.position}

    def set_state(self, state):
        self.position = int(state["position"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--micro-batches", type=int, default=1)
    from tests.train.tiny import parse_process_args  # noqa: PLC0415

    args = parse_process_args(p)
    import jax  # noqa: PLC0415
    from jax.experimental import multihost_utils  # noqa: PLC0415

    from ladder_jax.data.tokenizer import default_corpus, special_token_ids, train_tokenizer  # noqa: PLC0415
    from ladder_jax.generate import sampler  # noqa: PLC0415
    from ladder_jax.models.qwen25_vl.api import init_state  # noqa: PLC0415
    from ladder_jax.models.qwen25_vl.config import for_tokenizer, preset  # noqa: PLC0415
    from ladder_jax.parallel.distributed import process_rows  # noqa: PLC0415
    from ladder_jax.parallel.mesh import make_mesh  # noqa: PLC0415
    from ladder_jax.train.grpo import GRPOConfig, make_grpo_step  # noqa: PLC0415
    from ladder_jax.train.loop import LoopConfig, train  # noqa: PLC0415
    from ladder_jax.train.optim import OptimConfig  # noqa: PLC0415
    from tests.train.tiny import FAST_COMPILE  # noqa: PLC0415

    tok = train_tokenizer(default_corpus())
    cfg = for_tokenizer(preset("tiny"), special_token_ids(tok), len(tok))
    mesh = make_mesh()  # data over every device of every process
    graphdef, state = init_state(cfg, mesh, seed=0)
    ref = jax.tree.map(lambda x: 0.9 * x, state)
    grpo_cfg = GRPOConfig(group_size=GROUP, max_new_tokens=NEW_TOKENS, beta=0.1, micro_batches=args.micro_batches)
    step = make_grpo_step(graphdef, state, ref, OptimConfig(learning_rate=3e-3, total_steps=args.steps), mesh,
                          grpo_cfg, tok, FAST_COMPILE)

    # The rollouts, seen where the step draws them: a pass-through wrapper of the sampler the step calls.
    drawn, rollouts = [], []
    real_sample = sampler.sample
    sampler.sample = lambda *a, **kw: drawn.append(real_sample(*a, **kw)) or drawn[-1]

    def gather_rollout(step_number, state):  # runs after every step, between steps
        rollouts.append(multihost_utils.process_allgather(drawn.pop().tokens, tiled=True).tolist())

    loop_cfg = LoopConfig(workdir=args.workdir, total_steps=args.steps, batch_size=PROMPTS, log_every=1,
                          checkpoint_every=args.steps, eval_every=1, progress=False, tensorboard=False)
    train(step, state, LocalPrompts(cfg, process_rows(PROMPTS)), loop_cfg, cfg, eval_fn=gather_rollout)
    if jax.process_index() == 0:
        print(json.dumps({"rollouts": rollouts, "devices": jax.device_count(), "processes": jax.process_count()}))


if __name__ == "__main__":
    main()

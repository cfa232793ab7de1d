"""The sampler: greedy parity with transformers' generate, EOS stopping, teacher-forced log-probs,
sampling statistics, top-k / top-p against a plain-Python reference, shared prefill, sharding."""

import dataclasses
import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from jax.sharding import PartitionSpec as P

from ladder_jax import VisionLanguageModel
from ladder_jax.generate import generate, sampler
from ladder_jax.models.qwen25_vl.api import model_inputs
from ladder_jax.models.qwen25_vl.config import preset
from ladder_jax.parallel.mesh import make_mesh
from tests.models.qwen25_vl.reference import batch_inputs, build_sample, hf_model

LAYOUTS = [[("text", 9)], [("text", 3), ("image", (4, 6)), ("text", 4)],
           [("text", 2), ("video", (2, 4, 4)), ("text", 3)],
           [("text", 2), ("image", (4, 4)), ("text", 1), ("video", (2, 4, 4)), ("text", 2)]]  # 4 rows: shard on 2x2
GROUP, STEPS = 4, 10  # every single-device call on `prompts` shares one prefill compile


@pytest.fixture(scope="module")
def cfg():
    return preset("tiny")


@pytest.fixture(scope="module")
def hf_sharp(cfg):
    """A tiny random model whose greedy path wanders (plain random init repeats one token) and
    whose top-2 logit margins along it are >= 1e-2, far above fp32 differences between the two."""
    model = hf_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "visual" not in name:
                p.mul_(5.0 if "embed" in name else 10.0)
    return model


@pytest.fixture(scope="module")
def sharp_dir(hf_sharp, tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_sharp")
    hf_sharp.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def single(sharp_dir):
    return VisionLanguageModel.from_pretrained(sharp_dir, mesh=make_mesh(devices=jax.devices()[:1]))


def _left_pad_batch(singles, pad_id):
    """One processor-style batch from single prompts: ids left-padded, pixels concatenated in row order."""
    longest = max(s["input_ids"].shape[1] for s in singles)
    out = {}
    for key, fill in (("input_ids", pad_id), ("mm_token_type_ids", 0), ("attention_mask", 0)):
        out[key] = np.concatenate([np.pad(s[key], ((0, 0), (longest - s[key].shape[1], 0)), constant_values=fill)
                                   for s in singles])
    for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
        if any(key in s for s in singles):
            out[key] = np.concatenate([s[key] for s in singles if key in s])
    return out


@pytest.fixture(scope="module")
def singles(cfg):
    rng = np.random.default_rng(1)
    return [batch_inputs(cfg, [build_sample(cfg, rng, layout)], seed=i) for i, layout in enumerate(LAYOUTS)]


@pytest.fixture(scope="module")
def prompts(cfg, singles):
    return _left_pad_batch(singles, cfg.pad_token_id)


def _hf_generate(model, inputs, eos_id, pad_id, steps=STEPS, **settings):
    with torch.no_grad():
        out = model.generate(**{k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}, do_sample=False,
                             max_new_tokens=steps, eos_token_id=eos_id, pad_token_id=pad_id, **settings)
    new = out[:, inputs["input_ids"].shape[1]:].numpy()
    return np.pad(new, ((0, 0), (0, steps - new.shape[1])), constant_values=pad_id)


@pytest.fixture(scope="module")
def greedy(single, prompts, cfg):
    return generate(single, prompts, STEPS, num_samples=GROUP)


def test_greedy_equals_transformers(greedy, single, hf_sharp, singles, prompts, cfg):
    rows = greedy.reshape(len(LAYOUTS), GROUP, STEPS)
    assert (rows == rows[:, :1]).all()  # greedy samples of one prompt agree
    assert len(np.unique(rows[:, 0])) > STEPS  # the paths wander, so positions are really checked
    eos, pad = cfg.eos_token_id, cfg.pad_token_id
    for b, one in enumerate(singles):  # text, image, video, image + video prompts, unpadded in transformers
        np.testing.assert_array_equal(rows[b, 0], _hf_generate(hf_sharp, one, eos, pad)[0], err_msg=f"prompt {b}")
    np.testing.assert_array_equal(rows[:, 0], _hf_generate(hf_sharp, prompts, eos, pad))  # left-padded batch


def _cut_at_eos(tokens, eos, pad):
    tokens = tokens.copy()
    lengths, done = [], []
    for row in tokens:
        hits = np.flatnonzero(row == eos)
        n = int(hits[0]) + 1 if len(hits) else len(row)
        row[n:] = pad
        lengths.append(n)
        done.append(bool(len(hits)))
    return tokens, np.array(lengths), np.array(done)


def test_eos_stops_each_row(greedy, single, hf_sharp, prompts, cfg):
    first = greedy[::GROUP]
    eos, pad = int(first[0, 3]), cfg.pad_token_id  # a token the greedy path of prompt 0 emits
    want, lengths, done = _cut_at_eos(first, eos, pad)
    assert lengths[0] <= 4 and not done.all()  # one row stops early, another runs to the end
    layout = {k: np.asarray(v) for k, v in model_inputs(cfg, prompts).items()}
    out = sampler.sample(single.graphdef, single.state, layout, jax.random.key(0), num_samples=GROUP,
                         max_new_tokens=STEPS, temperature=0.0, eos_id=eos, pad_id=pad)
    np.testing.assert_array_equal(np.asarray(out.tokens)[::GROUP], want)
    np.testing.assert_array_equal(np.asarray(out.lengths)[::GROUP], lengths)
    np.testing.assert_array_equal(np.asarray(out.done)[::GROUP], done)
    np.testing.assert_array_equal(np.asarray(out.mask)[::GROUP], np.arange(STEPS) < lengths[:, None])
    assert (np.asarray(out.model_logprobs)[~np.asarray(out.mask)] == 0).all()
    np.testing.assert_array_equal(want, _hf_generate(hf_sharp, prompts, eos, pad))


def test_repetition_penalty_and_end_set_equal_transformers(greedy, single, hf_sharp, singles, prompts, cfg):
    """Greedy with transformers' repetition penalty and two end tokens, token for token; the end
    tokens come from the penalised paths, so rows stop on either one at different steps."""
    layout = {k: np.asarray(v) for k, v in model_inputs(cfg, prompts).items()}
    pad, steps = cfg.pad_token_id, 16
    plain = np.asarray(sampler.sample(single.graphdef, single.state, layout, jax.random.key(0), max_new_tokens=steps,
                                      temperature=0.0, eos_id=-1, pad_id=pad).tokens)
    changed = 0
    for penalty in (1.05, 1.5):
        free = np.asarray(sampler.sample(single.graphdef, single.state, layout, jax.random.key(0),
                                         max_new_tokens=steps, temperature=0.0, eos_id=-1, pad_id=pad,
                                         repetition_penalty=penalty).tokens)
        changed += int((free != plain).any(axis=1).sum())
        ends = [int(free[0, 5]), int(free[1, 2])]  # both emitted on a penalised path
        out = sampler.sample(single.graphdef, single.state, layout, jax.random.key(0), max_new_tokens=steps,
                             temperature=0.0, eos_id=ends, pad_id=pad, repetition_penalty=penalty)
        tokens, lengths, done = (np.asarray(x) for x in (out.tokens, out.lengths, out.done))
        assert lengths[0] <= 6 and lengths[1] <= 3, (ends, lengths)
        for b, one in enumerate(singles):
            want = _hf_generate(hf_sharp, one, ends, pad, steps, repetition_penalty=penalty)[0]
            np.testing.assert_array_equal(tokens[b], want, err_msg=f"penalty {penalty}, prompt {b}")
            n = int(lengths[b])
            assert done[b] == (tokens[b, n - 1] in ends) and not np.isin(tokens[b, :n - 1], ends).any()
    assert changed >= 2  # the penalty really changes paths, so the comparison has the power to fail


def test_end_set_and_penalty_values_do_not_recompile(single, prompts, cfg):
    layout = {k: np.asarray(v) for k, v in model_inputs(cfg, prompts).items()}
    run = functools.partial(sampler.sample, single.graphdef, single.state, layout, jax.random.key(0),
                            max_new_tokens=3, temperature=0.0, pad_id=cfg.pad_token_id)
    run(eos_id=[1, 2], repetition_penalty=1.05)
    before = sampler._decode._cache_size()
    run(eos_id=(7, 9), repetition_penalty=1.3)
    run(eos_id=np.array([3, 4]).tolist(), repetition_penalty=0.9)
    assert sampler._decode._cache_size() == before


@pytest.mark.parametrize("bad", ["504", [], [1.0], [True], None, 2 ** 40, [1, "2"]])
def test_end_tokens_refuses_non_ids(bad):
    with pytest.raises(ValueError, match="eos_id"):
        sampler.end_tokens(bad)


@pytest.mark.parametrize("bad", [0.0, -1.05, float("nan"), float("inf")])
def test_sample_refuses_bad_penalty(single, prompts, cfg, bad):
    layout = {k: np.asarray(v) for k, v in model_inputs(cfg, prompts).items()}
    with pytest.raises(ValueError, match="repetition_penalty"):
        sampler.sample(single.graphdef, single.state, layout, jax.random.key(0), max_new_tokens=2,
                       eos_id=1, pad_id=0, repetition_penalty=bad)


def _reference_penalty(logits, ids, penalty):
    """Plain Python of transformers' rule: each distinct id present -> x * p if x < 0 else x / p."""
    out = [float(x) for x in logits]
    p = np.float32(penalty)
    for i in set(ids):
        x = np.float32(logits[i])
        out[i] = float(x * p if x < 0 else x / p)
    return np.array(out, np.float32)


def test_repetition_penalty_matches_reference_on_random_inputs():
    rng = np.random.default_rng(11)
    rows, vocab = 600, 24
    logits = (rng.integers(-12, 12, size=(rows, vocab)) / rng.choice([1, 3, 7], size=(rows, 1))).astype(np.float32)
    logits[rng.random((rows, vocab)) < 0.05] = 0.0
    logits[rng.random((rows, vocab)) < 0.03] = -np.inf
    logits[rng.random((rows, vocab)) < 0.01] = np.inf
    length = 9
    ids = rng.integers(0, vocab, size=(rows, length))
    mask = (rng.random((rows, length)) < 0.7).astype(np.int32)  # 0: padding, never penalised
    penalties = rng.choice([1.05, 1.5, 0.8, 3.0, 1.0], size=rows)
    seen = jax.jit(sampler.prompt_presence, static_argnums=2)(ids, mask, vocab)
    got = np.asarray(jax.jit(sampler.apply_repetition_penalty)(logits, seen, penalties[:, None].astype(np.float32)))
    for r in range(rows):
        want = _reference_penalty(logits[r], [int(i) for i, m in zip(ids[r], mask[r]) if m], penalties[r])
        np.testing.assert_array_equal(got[r], want, err_msg=f"row {r}")
    assert (got != logits).any(axis=1).mean() > 0.5


def test_prompt_presence_repeats_rows_per_sample():
    ids = np.array([[5, 5, 1, 0], [2, 3, 3, 3]], np.int32)
    mask = np.array([[0, 1, 1, 1], [1, 1, 0, 1]], np.int32)
    with jax.set_mesh(make_mesh(devices=jax.devices()[:1])):
        seen = np.asarray(sampler._prompt_presence(ids, mask, vocab=6, num_samples=3))
    want = np.zeros((6, 6), bool)
    want[0:3, [5, 1, 0]] = True
    want[3:6, [2, 3]] = True
    np.testing.assert_array_equal(seen, want)


@pytest.fixture(scope="module")
def rollout(single, prompts, cfg):
    """G samples per prompt at temperature 1, recording what the jitted prefill was given."""
    seen = []
    real = sampler._prefill

    def spy(graphdef, state, batch, **static):
        seen.append({k: v.shape for k, v in batch.items()})
        return real(graphdef, state, batch, **static)

    layout = {k: np.asarray(v) for k, v in model_inputs(cfg, prompts).items()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sampler, "_prefill", spy)
        out = sampler.sample(single.graphdef, single.state, layout, jax.random.key(7), num_samples=GROUP,
                             max_new_tokens=STEPS, temperature=1.0, eos_id=cfg.eos_token_id, pad_id=cfg.pad_token_id)
    return layout, out, seen


def test_logprobs_equal_teacher_forced_forward(single, rollout):
    layout, out, _ = rollout
    tokens, mask = np.asarray(out.tokens), np.asarray(out.mask)
    full = {k: np.repeat(v, GROUP, axis=0) for k, v in layout.items()}
    length = full["input_ids"].shape[1]
    full["input_ids"] = np.concatenate([full["input_ids"], tokens], axis=1)
    full["attention_mask"] = np.concatenate([full["attention_mask"], mask.astype(full["attention_mask"].dtype)], axis=1)
    forward = jax.jit(lambda state, x: nnx.merge(single.graphdef, state)(**x))
    logits = np.asarray(forward(single.state, full))[:, length - 1:-1]  # position L-1+t predicts token t
    want = np.take_along_axis(jax.nn.log_softmax(logits, axis=-1), tokens[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(np.asarray(out.model_logprobs)[mask], want[mask], atol=1e-4, rtol=0)
    # temperature 1 without filters: the sampling distribution is the model's
    np.testing.assert_allclose(np.asarray(out.logprobs)[mask], want[mask], atol=1e-4, rtol=0)


def test_group_shares_one_prefill_and_samples_differ(rollout):
    layout, out, seen = rollout
    assert seen == [{k: v.shape for k, v in layout.items()}]  # one prefill call, prompt rows only
    assert seen[0]["input_ids"][0] == seen[0]["pixel_values"][0] == len(LAYOUTS)
    assert out.tokens.shape == (len(LAYOUTS) * GROUP, STEPS)
    groups = np.asarray(out.tokens).reshape(len(LAYOUTS), GROUP, STEPS)
    for b in range(len(LAYOUTS)):
        assert len({tuple(row) for row in groups[b]}) == GROUP


# ---- sampling statistics and filters ------------------------------------------------------------
def _chi2(counts, probs):
    """Pearson statistic (bins with expected count < 5 pooled) and a 6-sigma bound for it."""
    expected = probs * counts.sum()
    small = expected < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    obs, exp = obs[exp > 0], exp[exp > 0]
    df = len(exp) - 1
    return float(((obs - exp) ** 2 / exp).sum()), df + 6 * math.sqrt(2 * df)


def test_first_token_frequencies_match_softmax(single, hf_sharp, cfg):
    rows = 8000
    one = batch_inputs(cfg, [build_sample(cfg, np.random.default_rng(3), [("text", 6)])])
    with torch.no_grad():
        logits = hf_sharp(**{k: torch.from_numpy(v) for k, v in one.items()}).logits[0, -1].double().numpy()
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    layout = {k: np.asarray(v) for k, v in model_inputs(cfg, one).items()}
    out = sampler.sample(single.graphdef, single.state, layout, jax.random.key(1), num_samples=rows,
                         max_new_tokens=1, temperature=1.0, eos_id=-1, pad_id=cfg.pad_token_id)
    counts = np.bincount(np.asarray(out.tokens)[:, 0], minlength=len(probs))
    stat, bound = _chi2(counts, probs)
    assert stat < bound, (stat, bound)
    hotter = np.exp((logits - logits.max()) / 1.5)
    assert _chi2(counts, hotter / hotter.sum())[0] > bound  # the check has the power to fail


def _reference_keep(logits, top_k, top_p):
    """Plain Python: which tokens top-k then top-p keep, and how far the decision is from top_p."""
    values = [float(x) for x in logits]
    keep = [x != -math.inf for x in values]
    if 0 < top_k < len(values):
        kth = sorted(values, reverse=True)[top_k - 1]
        keep = [k and x >= kth for k, x in zip(keep, values)]
    margin = math.inf
    if top_p < 1.0:
        top = max(x for x, k in zip(values, keep) if k)
        weights = [math.exp(x - top) if k else 0.0 for x, k in zip(values, keep)]
        probs = [w / sum(weights) for w in weights]
        ahead = [sum(q for q in probs if q > p) for p in probs]
        margin = min(abs(a - top_p) for a, k in zip(ahead, keep) if k)
        keep = [k and a < top_p for k, a in zip(keep, ahead)]
    return np.array(keep), margin


def _random_logits(rng, rows, vocab):
    """Quantised (many ties), with some -inf entries."""
    logits = rng.integers(-8, 8, size=(rows, vocab)) / 4.0
    logits[rng.random((rows, vocab)) < 0.1] = -np.inf
    logits[:, 0] = rng.integers(-8, 8, size=rows) / 4.0  # at least one finite entry per row
    return logits.astype(np.float32)


@pytest.mark.parametrize("top_k, top_p", [(1, 1.0), (7, 1.0), (0, 0.3), (0, 0.9), (5, 0.5)])
def test_filters_match_reference_and_sampling_stays_inside(top_k, top_p):
    rng = np.random.default_rng(top_k * 100 + int(top_p * 100))
    logits, draws = _random_logits(rng, 400, 16), 64
    keys = jax.random.split(jax.random.key(top_k), len(logits) * draws)

    @jax.jit
    def run(x, keys):
        kept = jnp.isfinite(sampler.filter_logits(x, top_k, top_p))
        return kept, sampler.choose(jnp.repeat(x, draws, axis=0), keys, temperature=1.0, top_k=top_k, top_p=top_p)

    got, (tokens, logprobs) = jax.tree.map(np.asarray, run(logits, keys))
    checked = 0
    for row, kept in zip(logits, got):
        want, margin = _reference_keep(row, top_k, top_p)
        if margin > 1e-5:  # float32 and float64 may round a boundary sum differently
            np.testing.assert_array_equal(kept, want, err_msg=f"{row}")
            checked += 1
    assert checked > 350

    tokens = tokens.reshape(len(logits), draws)
    assert np.take_along_axis(got, tokens, axis=1).all()
    masked = np.where(got, logits, -np.inf)
    want_lp = np.take_along_axis(np.asarray(jax.nn.log_softmax(masked, axis=-1)), tokens, axis=1)
    np.testing.assert_allclose(logprobs.reshape(len(logits), draws), want_lp, atol=1e-5)


def test_filtered_frequencies_and_temperature():
    logits = np.array([2.0, 2.0, 1.5, 1.0, 0.5, 0.0, -1.0, -np.inf, 1.0, 0.25], np.float32)
    rows = 10000
    keys = jax.random.split(jax.random.key(5), rows)
    for temperature, top_k, top_p in ((0.5, 0, 1.0), (2.0, 6, 0.8)):
        kept = _reference_keep(logits / temperature, top_k, top_p)[0]
        probs = np.where(kept, np.exp((logits - logits.max()) / temperature), 0.0)
        probs /= probs.sum()
        draw = jax.jit(lambda k: sampler.choose(jnp.broadcast_to(logits, (rows, len(logits))), k,
                                                temperature=temperature, top_k=top_k, top_p=top_p)[0])
        tokens = draw(keys)
        stat, bound = _chi2(np.bincount(np.asarray(tokens), minlength=len(logits)), probs)
        assert stat < bound, (temperature, top_k, top_p, stat, bound)
    greedy, lp = sampler.choose(jnp.asarray(logits)[None], keys[:1], temperature=0.0, top_k=3, top_p=0.5)
    assert int(greedy[0]) == 0 and float(lp[0]) == 0.0



def _reference_draw(logits, u):
    """Plain Python: the first token whose cumulative probability exceeds u (in [0, 1)), skipping
    tokens of probability 0; and how far u * total lies from the nearest cumulative sum."""
    top = max(float(x) for x in logits)
    weights = [math.exp(float(x) - top) if x != -math.inf else 0.0 for x in logits]
    total, running, margin, choice = math.fsum(weights), 0.0, math.inf, None
    for i, w in enumerate(weights):
        running += w
        margin = min(margin, abs(running - u * total) / total)
        if choice is None and w > 0 and running > u * total:
            choice = i
    return choice, margin


@pytest.mark.parametrize("vocab", [1, 5, 255, 256, 257, 700])
def test_draw_inverts_the_cumulative_distribution_as_a_plain_reference(vocab):
    rng = np.random.default_rng(vocab)
    rows = 300
    logits = rng.normal(0.0, 3.0, size=(rows, vocab)).astype(np.float32)
    logits[rng.random((rows, vocab)) < 0.3] = -np.inf
    logits[:, rng.integers(0, vocab, size=rows)] = 0.0  # at least one finite entry per row
    logits[: rows // 4, : vocab - 1] = -np.inf  # only the last token left (in a partial last block)
    logits[: rows // 4, -1] = 0.0
    keys = jax.random.split(jax.random.key(vocab), rows)
    tokens = np.asarray(jax.jit(sampler.draw)(logits, keys))
    uniforms = np.asarray(jax.vmap(lambda k: jax.random.uniform(k, (), jnp.float32))(keys))
    checked = 0
    for row, u, token in zip(logits, uniforms, tokens):
        assert np.isfinite(row[token]), (row, token)  # never a token of probability 0
        want, margin = _reference_draw(row, float(u))
        if margin > 1e-5:  # float32 sums may fall on the other side of a boundary this close
            assert token == want, (row, u, token, want)
            checked += 1
    assert checked > 0.9 * rows


@pytest.mark.parametrize("case", ["one finite", "ties", "huge", "tiny probabilities", "last of 151936"])
def test_draw_on_hostile_logits_returns_only_possible_tokens(case):
    vocab = 151936 if case == "last of 151936" else 1000
    logits = np.full((64, vocab), -np.inf, np.float32)
    if case == "one finite":
        logits[:, 517] = -3e38
    elif case == "ties":
        logits[:, ::7] = 1.0
    elif case == "huge":
        logits[:, :10] = np.float32(3e38)
        logits[:, 10:20] = -3e38
    elif case == "tiny probabilities":
        logits[:, :] = -200.0
        logits[:, 999] = 0.0
    else:
        logits[:, -1] = 0.0
    tokens = np.asarray(jax.jit(sampler.draw)(logits, jax.random.split(jax.random.key(0), 64)))
    possible = np.asarray(jax.nn.softmax(logits, axis=-1)) > 0
    assert possible[np.arange(64), tokens].all(), (case, tokens)


def test_draw_stays_in_the_vocabulary_on_rows_with_no_probability():
    logits = np.full((3, 300), np.nan, np.float32)  # what a poisoned model would give
    logits[1] = -np.inf
    tokens = np.asarray(sampler.draw(jnp.asarray(logits), jax.random.split(jax.random.key(0), 3)))
    assert ((0 <= tokens) & (tokens < 300)).all(), tokens


# ---- sharding -----------------------------------------------------------------------------------
def test_sharded_mesh_gives_single_device_tokens(greedy, sharp_dir, prompts, monkeypatch):
    sharded = VisionLanguageModel.from_pretrained(sharp_dir, mesh=make_mesh(data=2, fsdp=2, tensor=2))
    calls = []
    real = sampler._prefill

    def spy(graphdef, state, batch, **static):
        calls.append((batch, real(graphdef, state, batch, **static)))
        return calls[-1][1]

    monkeypatch.setattr(sampler, "_prefill", spy)
    np.testing.assert_array_equal(generate(sharded, prompts, STEPS, num_samples=GROUP), greedy)
    (batch, (logits, cache)), = calls
    assert batch["input_ids"].sharding.spec == P(("data", "fsdp"), None)  # prompt rows
    assert cache.k.sharding.spec == P(None, ("data", "fsdp"), "tensor")  # sample rows and kv heads
    assert cache.k.shape[1] == len(LAYOUTS) * GROUP
    assert cache.k.shape[3] == prompts["input_ids"].shape[1] + STEPS - 1
    assert logits.sharding.spec == P(("data", "fsdp"))


def _loop_gathers(hlo: str) -> list[int]:
    """Element counts of the all-gathers inside the while loops' bodies of a compiled HLO module."""
    sizes = []
    for name in set(re.findall(r"while\(.*?body=%?([\w.-]+)", hlo)):
        block = re.search(rf"^%?{re.escape(name)} .*?^}}", hlo, re.M | re.S).group(0)
        for dims in re.findall(r"= \w+\[([\d,]*)\][^ ]* all-gather(?:-start)?\(", block):
            sizes.append(math.prod(int(d) for d in dims.split(",") if d))
    return sizes


def _decode_hlo(model, batch, gather: bool) -> str:
    with jax.set_mesh(model.mesh):
        logits, cache = sampler._prefill(model.graphdef, model.state, batch, num_samples=GROUP, max_new_tokens=STEPS)
        return sampler._decode.lower(
            model.graphdef, model.state, cache, logits, jax.random.key(1), jnp.asarray([-1], jnp.int32), jnp.int32(0),
            jnp.float32(1.0), None, max_new_tokens=STEPS, temperature=1.0, top_k=0, top_p=1.0,
            gather_weights=gather).compile().as_text()


def test_fsdp_decode_gathers_the_weights_once_not_every_token(sharp_dir, prompts):
    """On an FSDP mesh the decode loop reads weights gathered before it: no all-gather in its body;
    with gather_weights=False each step gathers them. Both give the 1-device tokens."""
    model = VisionLanguageModel.from_pretrained(sharp_dir, mesh=make_mesh(data=1, fsdp=8, tensor=1))
    single = VisionLanguageModel.from_pretrained(sharp_dir)
    batch = {k: jnp.asarray(v) for k, v in model_inputs(single.config, prompts).items()}
    want = sampler.sample(single.graphdef, single.state, batch, jax.random.key(1), num_samples=GROUP,
                          max_new_tokens=STEPS, eos_id=-1, pad_id=0).tokens
    for gather in (True, False):
        got = sampler.sample(model.graphdef, model.state, batch, jax.random.key(1), num_samples=GROUP,
                             max_new_tokens=STEPS, eos_id=-1, pad_id=0, gather_weights=gather).tokens
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert not _loop_gathers(_decode_hlo(model, batch, True))
    assert _loop_gathers(_decode_hlo(model, batch, False))


def test_untied_decode_gathers_only_token_rows_in_the_loop(cfg, prompts):
    """With a separate LM head (7B) the embedding table stays sharded: each step gathers only the
    looked-up rows (batch x hidden), never a weight matrix."""
    untied = cfg.replace(text=dataclasses.replace(cfg.text, tie_word_embeddings=False))
    model = VisionLanguageModel.from_config(untied, mesh=make_mesh(data=1, fsdp=8, tensor=1))
    batch = {k: jnp.asarray(v) for k, v in model_inputs(untied, prompts).items()}
    t = untied.text
    rows = batch["input_ids"].shape[0] * GROUP
    assert max(_loop_gathers(_decode_hlo(model, batch, True)), default=0) <= rows * t.hidden_size
    assert max(_loop_gathers(_decode_hlo(model, batch, False))) >= t.hidden_size * t.intermediate_size

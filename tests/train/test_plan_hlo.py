"""Collective bytes from HLO text: loops multiply by their trip count, a conditional counts its
largest branch, async pairs count once, reduce-scatter counts what it reduces."""

import math

from ladder_jax.plan import hlo

HLO = """HloModule jit_step, is_scheduled=true

%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(%a, %b)
}

%cond (p: (s32[], f32[8])) -> pred[] {
  %p = (s32[]{:T(128)}, f32[8]{0}) parameter(0)
  %big = s32[]{:T(128)} constant(4096)
  %n = s32[]{:T(128)} constant(36)
  %i = s32[]{:T(128)} get-tuple-element(%p), index=0
  ROOT %lt = pred[]{:T(512)} compare(%i, %n), direction=LT
}

%open_cond (p: (s32[], f32[8])) -> pred[] {
  %p = (s32[], f32[8]) parameter(0)
  %i = s32[] get-tuple-element(%p), index=0
  %limit = s32[] get-tuple-element(%p), index=2
  ROOT %lt = pred[] compare(%i, %limit), direction=LT
}

%body (p: (s32[], f32[8])) -> (s32[], f32[8]) {
  %p = (s32[], f32[8]) parameter(0)
  %ag = bf16[16,1024]{1,0:T(8,128)(2,1)} all-gather(%x), channel_id=1, replica_groups={{0,1,2,3}}, dimensions={0}
  %rs = f32[4,256]{1,0} reduce-scatter(%y), channel_id=2, replica_groups=[4,4]<=[16], dimensions={0}, to_apply=%add
  ROOT %t = (s32[], f32[8]) tuple(%i, %v)
}

%small_branch (p: f32[8]) -> f32[8] {
  %ar = f32[8]{0} all-reduce(%p), replica_groups={{0,1}}, to_apply=%add
}

%big_branch (p: f32[8]) -> f32[8] {
  %ar2 = f32[1000]{0} all-reduce(%p), replica_groups={{0,1}}, to_apply=%add
}

%fused (x: bf16[64]) -> bf16[64] {
  %cp = bf16[64]{0} collective-permute(%x), source_target_pairs={{0,1}}
}

ENTRY %main (x: f32[8]) -> f32[8] {
  %w = (s32[], f32[8]) while(%init), condition=%cond, body=%body, metadata={op_name="scan"}
  %w2 = (s32[], f32[8]) while(%init), condition=%open_cond, body=%body
  %c = f32[8] conditional(%pred, %x, %x), branch_computations={%small_branch, %big_branch}
  %f = bf16[64] fusion(%x), kind=kLoop, calls=%fused
  %ags = ((bf16[128]{0}), bf16[512]{0}) all-gather-start(%x), replica_groups={{0,1,2,3}}, dimensions={0}
  %agd = bf16[512]{0} all-gather-done(%ags)
  ROOT %all = f32[2,3]{1,0} all-reduce(%x), replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_1'}, to_apply=%add
}
"""


def test_reference_counts():
    gather, scatter = 16 * 1024 * 2, 4 * 256 * 4 * 4  # per body run; reduce-scatter x its group of 4
    expected = {"all-gather": (36 + 7) * gather + 512 * 2,  # the scan's 36 trips, the open loop's 7, the async pair
                "reduce-scatter": (36 + 7) * scatter,
                "all-reduce": 1000 * 4 + 2 * 3 * 4,  # the larger branch and the entry's own
                "collective-permute": 64 * 2}
    assert hlo.collective_bytes(HLO, unknown_trips=7) == expected


def test_array_bytes_and_groups():
    assert hlo.array_bytes("(bf16[2,3]{1,0}, f32[]{:T(128)}, pred[4])") == [12, 4, 4]
    assert hlo.array_bytes("s4[10]") == [5.0]
    assert hlo.group_size("x, replica_groups={{0,1,2}}, y") == 3
    assert hlo.group_size("replica_groups=[2,8]<=[16]") == 8
    assert hlo.group_size("replica_groups=mesh['a'=2,'b'=4,'c'=3] {'b','c'}") == 12
    assert hlo.group_size("no groups here") == 1
    assert hlo.collective_bytes("not hlo at all") == {}


def test_many_random_loops_agree_with_a_direct_count():
    """Nested loops of random trip counts around one all-gather: bytes = size x product of trips."""
    import random
    rng = random.Random(0)
    for _ in range(50):
        trips = [rng.randint(1, 50) for _ in range(rng.randint(0, 4))]
        size = rng.randint(1, 4096)
        comps = [f"%leaf (p: f32[]) -> f32[] {{\n  %g = f32[{size}]{{0}} all-gather(%p), replica_groups={{{{0,1}}}}\n}}\n"]
        callee = "leaf"
        for depth, n in enumerate(trips):
            comps.append(f"%c{depth} (p: s32[]) -> pred[] {{\n  %n = s32[] constant({n})\n"
                         f"  ROOT %lt = pred[] compare(%p, %n), direction=LT\n}}\n")
            comps.append(f"%b{depth} (p: s32[]) -> s32[] {{\n  %w = s32[] while(%p), condition=%c{depth}, "
                         f"body=%{callee}\n}}\n")
            callee = f"b{depth}"
        comps.append(f"ENTRY %main (p: s32[]) -> s32[] {{\n  %f = s32[] fusion(%p), kind=kLoop, calls=%{callee}\n}}\n")
        assert hlo.collective_bytes("\n".join(comps)) == {"all-gather": size * 4 * math.prod(trips)}

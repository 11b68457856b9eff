/**
 * lorakit_order.py, as the exported job writes it: lorakit's window order in plain Python (no imports), so the
 * transformers run takes the same windows at every step as `lorakit train`. It ports core/rng.ts (splitmix32 seeding,
 * xoshiro128**, Fisher–Yates) and tasks/train/schedule.ts's epochOrder; test/unit/export-job checks it against them.
 */
export const ORDER_PY = `"""
lorakit's training order, reproduced exactly.

Each epoch visits the training windows in a Fisher-Yates shuffle drawn from xoshiro128** (seeded through
splitmix32) with the seed (run seed + 1) * 1000003 + epoch; a run's cursor goes straight on into the next epoch's
order, so an optimizer step may take windows from two epochs. This module only needs the standard library, so it
can be checked without torch: python3 -c "from lorakit_order import window_order; print(window_order(5, 0, 10))"
"""

M32 = 0xFFFFFFFF


def _rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class Rng:
    """xoshiro128** with a four-word state, as lorakit's src/engine/core/rng.ts."""

    def __init__(self, seed):
        # splitmix32 spreads the seed over the state
        x = seed & M32
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B9) & M32
            z = ((x ^ (x >> 16)) * 0x85EBCA6B) & M32
            z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
            self.s.append(z ^ (z >> 16))

    def next_u32(self):
        s = self.s
        result = (_rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 11)
        return result

    def next(self):
        """uniform in [0, 1) with 32 bits of resolution"""
        return self.next_u32() / 4294967296.0

    def shuffle(self, items):
        """Fisher-Yates in place, from the last item down"""
        for i in range(len(items) - 1, 0, -1):
            j = int(self.next() * (i + 1))
            items[i], items[j] = items[j], items[i]
        return items


def epoch_order(n, seed, epoch):
    """the order epoch \`epoch\` visits windows 0..n-1 in"""
    return Rng(((seed + 1) * 1000003 + epoch) & M32).shuffle(list(range(n)))


def window_order(n, seed, count, sequential=False):
    """the first \`count\` windows a run over n training windows takes, in order (--data-order sequential: file order)"""
    if sequential:
        return [c % n for c in range(count)]
    out = []
    order = []
    for c in range(count):
        if c % n == 0:
            order = epoch_order(n, seed, c // n)
        out.append(order[c % n])
    return out
`;

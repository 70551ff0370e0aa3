// Advantages against hand-computed tables: REINFORCE++ discounted returns whitened over the
// batch, GRPO group-relative values with and without the std, and the dynamic-sampling test.
import { expect } from "chai";
import {
  advantages,
  discountedReturns,
  grpo,
  hasSignal,
  reinforcePlusPlus,
} from "../../images/trainer/hub/advantage.js";

const close = (got: number[], want: number[]): void => {
  expect(got.length).to.equal(want.length);
  got.forEach((g, i) => expect(g).to.be.closeTo(want[i]!, 1e-5));
};

describe("hub advantages", () => {
  const returnCases: { rewards: number[]; gamma: number; want: number[] }[] = [
    { rewards: [0.1, 0.1, 1], gamma: 1, want: [1.2, 1.1, 1] },
    { rewards: [0.1, 0.1, 1], gamma: 0.5, want: [0.1 + 0.5 * 0.6, 0.1 + 0.5, 1] },
    { rewards: [1, 0, 0], gamma: 0.9, want: [1, 0, 0] },
    { rewards: [], gamma: 0.9, want: [] },
  ];
  for (const c of returnCases)
    it(`discounted returns of [${c.rewards.join(", ")}] with gamma ${c.gamma}`, () =>
      close(discountedReturns(c.rewards, c.gamma), c.want));

  it("REINFORCE++ whitens the returns of every turn over the whole batch", () => {
    // returns: [1, 0] and [0] and [2] -> mean 0.75, std sqrt(((.25)^2+(.75)^2*2+(1.25)^2)/4)
    const groups = [
      [
        { turnRewards: [1, 0], total: 1 },
        { turnRewards: [0], total: 0 },
      ],
      [{ turnRewards: [2], total: 2 }],
    ];
    const all = [1, 0, 0, 2];
    const mean = 0.75;
    const std = Math.sqrt(all.reduce((a, x) => a + (x - mean) ** 2, 0) / 4);
    const got = reinforcePlusPlus(groups, 1);
    close(got[0]![0]!, [(1 - mean) / std, (0 - mean) / std]);
    close(got[0]![1]!, [(0 - mean) / std]);
    close(got[1]![0]!, [(2 - mean) / std]);
    const flat = got.flat(2);
    expect(flat.reduce((a, b) => a + b, 0)).to.be.closeTo(0, 1e-9);
  });

  it("GRPO: reward minus the group mean, over the group std, spread to every turn", () => {
    const g = [
      { turnRewards: [0, 1], total: 1 },
      { turnRewards: [0, 0, 0], total: 0 },
    ];
    const [withStd] = grpo([g], true);
    close(withStd![0]!, [1, 1]); // (1 - 0.5) / 0.5
    close(withStd![1]!, [-1, -1, -1]);
    const [noStd] = grpo([g], false);
    close(noStd![0]!, [0.5, 0.5]);
    close(noStd![1]!, [-0.5, -0.5, -0.5]);
  });

  it("GRPO normalizes each group on its own", () => {
    const a = advantages(
      [
        [
          { turnRewards: [1], total: 1 },
          { turnRewards: [0], total: 0 },
        ],
        [
          { turnRewards: [10], total: 10 },
          { turnRewards: [8], total: 8 },
        ],
      ],
      { algorithm: "grpo", gamma: 1, normalizeStd: false },
    );
    expect(a.map((g) => g.map((t) => t[0]))).to.deep.equal([
      [0.5, -0.5],
      [1, -1],
    ]);
  });

  const signalCases: [number[], boolean][] = [
    [[1, 1, 1], false],
    [[0, 0], false],
    [[0, 0.2], true],
    [[1], true],
    [[0.3, 0.3 + 1e-12], false],
  ];
  for (const [totals, want] of signalCases)
    it(`dynamic sampling: [${totals.join(", ")}] has signal = ${want}`, () =>
      expect(hasSignal(totals)).to.equal(want));
});

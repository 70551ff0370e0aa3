// The HPA's behavior semantics, case by case: stabilization windows over past recommendations,
// and rate policies (Pods / Percent per period, selectPolicy Max / Min / Disabled) over past
// scale events. Expected values follow kubernetes' horizontal.go arithmetic.
import { expect } from "chai";
import {
  type BehaviorHistory,
  emptyHistory,
  rateLimit,
  recordScale,
  scaleDownLimit,
  scaleUpLimit,
  stabilize,
} from "../../operator/autoscaler/behavior.js";
import { type Behavior, type ScalingRules } from "../../operator/autoscaler/types.js";
import { DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP } from "./builders.js";

const T0 = 1_700_000_000_000;
const ago = (s: number) => T0 - s * 1000;
const rules = (r: Partial<ScalingRules>): ScalingRules => ({
  stabilizationWindowSeconds: 0,
  policies: [],
  selectPolicy: "Max",
  ...r,
});
const behavior = (up: Partial<ScalingRules> = {}, down: Partial<ScalingRules> = {}): Behavior => ({
  scaleUp: { ...DEFAULT_SCALE_UP, ...up },
  scaleDown: { ...DEFAULT_SCALE_DOWN, ...down },
});
const hist = (h: Partial<BehaviorHistory> = {}): BehaviorHistory => ({ ...emptyHistory(), ...h });

describe("HPA behavior: stabilization windows", () => {
  const cases: {
    name: string;
    recs: [number, number][]; // [replicas, seconds ago]
    current: number;
    desired: number;
    up: number;
    down: number;
    want: number;
  }[] = [
    { name: "no history: desired passes", recs: [], current: 5, desired: 3, up: 0, down: 300, want: 3 },
    {
      name: "scale-down takes the highest recommendation in the window",
      recs: [
        [4, 60],
        [5, 120],
        [9, 180],
      ],
      current: 100,
      desired: 3,
      up: 0,
      down: 300,
      want: 9,
    },
    {
      name: "recommendations older than the down window are ignored",
      recs: [
        [4, 60],
        [9, 400],
      ],
      current: 10,
      desired: 3,
      up: 0,
      down: 300,
      want: 4,
    },
    {
      name: "scale-up takes the lowest recommendation in the up window",
      recs: [
        [10, 60],
        [6, 120],
        [9, 180],
      ],
      current: 1,
      desired: 14,
      up: 300,
      down: 0,
      want: 6,
    },
    {
      name: "up window never forces a scale-down below current",
      recs: [[2, 60]],
      current: 5,
      desired: 14,
      up: 300,
      down: 0,
      want: 5,
    },
    {
      name: "zero windows: desired passes both ways",
      recs: [[20, 1]],
      current: 10,
      desired: 3,
      up: 0,
      down: 0,
      want: 3,
    },
    {
      name: "saw-tooth: a 90 s cycle inside a 300 s down window holds the peak",
      recs: [
        [16, 30],
        [1, 45],
        [16, 120],
        [1, 135],
      ],
      current: 16,
      desired: 1,
      up: 0,
      down: 300,
      want: 16,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const h = c.recs.map(([replicas, s]) => ({ at: ago(s), replicas }));
      const b = behavior({ stabilizationWindowSeconds: c.up }, { stabilizationWindowSeconds: c.down });
      const got = stabilize(h, c.desired, c.current, T0, b);
      expect(got.replicas).to.equal(c.want);
      expect(got.recommendations.at(-1)).to.deep.equal({ at: T0, replicas: c.desired });
    });
  }

  it("forgets recommendations neither window can see", () => {
    const h = [
      { at: ago(1000), replicas: 7 },
      { at: ago(10), replicas: 8 },
    ];
    const got = stabilize(
      h,
      3,
      5,
      T0,
      behavior({ stabilizationWindowSeconds: 60 }, { stabilizationWindowSeconds: 300 }),
    );
    expect(got.recommendations.map((r) => r.replicas)).to.deep.equal([8, 3]);
  });
});

describe("HPA behavior: rate policies", () => {
  const pods = (value: number, periodSeconds = 60) => ({ type: "Pods" as const, value, periodSeconds });
  const pct = (value: number, periodSeconds = 60) => ({ type: "Percent" as const, value, periodSeconds });

  const upCases: { name: string; current: number; r: ScalingRules; h?: BehaviorHistory; want: number }[] = [
    {
      name: "Min of Pods 2 and Percent 50 from 1 replica",
      current: 1,
      r: rules({ selectPolicy: "Min", policies: [pods(2), pct(50)] }),
      want: 2,
    },
    { name: "defaults from 5: +100 % beats +4", current: 5, r: DEFAULT_SCALE_UP, want: 10 },
    { name: "defaults from 2: +4 beats +100 %", current: 2, r: DEFAULT_SCALE_UP, want: 6 },
    { name: "Percent rounds up", current: 3, r: rules({ policies: [pct(10)] }), want: 4 },
    {
      name: "Disabled holds",
      current: 3,
      r: rules({ selectPolicy: "Disabled", policies: [pods(10)] }),
      want: 3,
    },
    {
      name: "scale-ups inside the period count against it",
      current: 7,
      r: rules({ policies: [pods(4, 60)] }),
      h: hist({ scaleUpEvents: [{ at: ago(30), change: 3 }] }),
      want: 8,
    },
    {
      name: "scale-ups older than the period do not",
      current: 7,
      r: rules({ policies: [pods(4, 60)] }),
      h: hist({ scaleUpEvents: [{ at: ago(61), change: 3 }] }),
      want: 11,
    },
    {
      name: "scale-downs inside the period give room back",
      current: 7,
      r: rules({ policies: [pods(4, 60)] }),
      h: hist({ scaleDownEvents: [{ at: ago(10), change: 2 }] }),
      want: 13,
    },
  ];
  for (const c of upCases) {
    it(`up: ${c.name}`, () => expect(scaleUpLimit(c.current, c.h ?? hist(), c.r, T0)).to.equal(c.want));
  }

  const downCases: { name: string; current: number; r: ScalingRules; h?: BehaviorHistory; want: number }[] = [
    {
      name: "Min of Pods 2 and Percent 50 from 5 keeps the most",
      current: 5,
      r: rules({ selectPolicy: "Min", policies: [pods(2), pct(50)] }),
      want: 3,
    },
    {
      name: "Max of the same removes the most",
      current: 5,
      r: rules({ policies: [pods(2), pct(50)] }),
      want: 2,
    },
    { name: "Percent truncates", current: 10, r: rules({ policies: [pct(30)] }), want: 7 },
    { name: "default 100 % allows going to zero", current: 10, r: DEFAULT_SCALE_DOWN, want: 0 },
    {
      name: "scale-downs inside the period count against it",
      current: 10,
      r: rules({ policies: [pods(3, 60)] }),
      h: hist({ scaleDownEvents: [{ at: ago(20), change: 2 }] }),
      want: 9,
    },
    {
      name: "Disabled holds",
      current: 10,
      r: rules({ selectPolicy: "Disabled", policies: [pods(3)] }),
      want: 10,
    },
  ];
  for (const c of downCases) {
    it(`down: ${c.name}`, () => expect(scaleDownLimit(c.current, c.h ?? hist(), c.r, T0)).to.equal(c.want));
  }

  const limitCases: {
    name: string;
    desired: number;
    current: number;
    min: number;
    max: number;
    b: Behavior;
    h?: BehaviorHistory;
    want: [number, string];
  }[] = [
    {
      name: "within range",
      desired: 7,
      current: 5,
      min: 1,
      max: 10,
      b: behavior(),
      want: [7, "DesiredWithinRange"],
    },
    {
      name: "rate-limited up",
      desired: 100,
      current: 5,
      min: 1,
      max: 200,
      b: behavior(),
      want: [10, "ScaleUpLimit"],
    },
    {
      name: "max binds before the rate",
      desired: 100,
      current: 5,
      min: 1,
      max: 8,
      b: behavior(),
      want: [8, "TooManyReplicas"],
    },
    {
      name: "Pods policy larger than Percent",
      desired: 200,
      current: 3,
      min: 1,
      max: 500,
      b: behavior({ policies: [pods(100), pct(100)] }),
      want: [103, "ScaleUpLimit"],
    },
    {
      name: "rate-limited down",
      desired: 1,
      current: 10,
      min: 1,
      max: 20,
      b: behavior({}, { policies: [pods(2)] }),
      want: [8, "ScaleDownLimit"],
    },
    {
      name: "min binds before the rate",
      desired: 0,
      current: 10,
      min: 4,
      max: 20,
      b: behavior(),
      want: [4, "TooFewReplicas"],
    },
    {
      name: "an exhausted up budget holds at current",
      desired: 20,
      current: 10,
      min: 1,
      max: 20,
      b: behavior({ policies: [pods(2, 60)] }),
      h: hist({ scaleUpEvents: [{ at: ago(5), change: 5 }] }),
      want: [10, "ScaleUpLimit"],
    },
  ];
  for (const c of limitCases) {
    it(`limit: ${c.name}`, () => {
      const got = rateLimit(c.desired, c.current, c.min, c.max, c.h ?? hist(), c.b, T0);
      expect([got.replicas, got.reason]).to.deep.equal(c.want);
    });
  }

  it("records scale events by direction and drops those older than every period", () => {
    const b = behavior({ policies: [pods(4, 15)] }, { policies: [pods(4, 60)] });
    let h = hist({
      scaleUpEvents: [{ at: ago(100), change: 1 }],
      scaleDownEvents: [{ at: ago(30), change: 2 }],
    });
    h = recordScale(h, 3, 6, T0, b);
    expect(h.scaleUpEvents).to.deep.equal([{ at: T0, change: 3 }]);
    expect(h.scaleDownEvents).to.deep.equal([{ at: ago(30), change: 2 }]);
    h = recordScale(h, 6, 6, T0 + 1, b);
    expect(h.scaleUpEvents).to.have.length(1);
  });
});

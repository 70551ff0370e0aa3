// Lint: typescript-eslint's recommended rules (syntax-level, fast) on every TypeScript file, and
// the import boundaries of docs/architecture.md ("Import boundaries"), enforced with
// eslint-plugin-import-x's no-restricted-paths on resolved paths (TypeScript resolver, so a
// `../x.js` import is checked as the `.ts` file it is). Import cycles: `madge` (npm run lint).
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";

/** Production code under `target` must not import from any of `from` (paths from the repository root). */
const zone = (target, from, message) => ({ target, from, message });

const BOUNDARIES = [
  zone("./operator", "./images", "the operator builds pods for the images; it never imports their code"),
  zone("./images/worker", "./images/trainer", "the worker and the trainer are separate images"),
  zone("./images/trainer", "./images/worker", "the worker and the trainer are separate images"),
  zone(
    "./images/inference",
    "./images/trainer",
    "the sidecar imports weight pieces from lib/weights, not the trainer",
  ),
  zone(
    "./lib",
    ["./operator", "./images", "./local", "./cli", "./eval"],
    "lib/ is the runtime every program shares",
  ),
  zone(
    ["./operator", "./images", "./lib", "./local", "./cli", "./monitoring", "./eval"],
    "./test",
    "production code never imports tests",
  ),
  zone(
    ["./operator", "./images", "./lib", "./local", "./cli", "./monitoring", "./eval"],
    "./examples",
    "examples are data a run names, not code a program imports",
  ),
  zone(
    ["./operator", "./images", "./local"],
    "./cli",
    "programs register with cli/; its runtime helpers (runMain) live in lib/",
  ),
];

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "gen/", "**/*.js", "**/*.mjs", "charts/"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      eqeqeq: ["error", "smart"],
      "no-console": "off",
    },
  },
  {
    files: [
      "operator/**/*.ts",
      "images/**/*.ts",
      "lib/**/*.ts",
      "local/**/*.ts",
      "cli/**/*.ts",
      "monitoring/**/*.ts",
      "eval/**/*.ts",
    ],
    plugins: { "import-x": importX },
    settings: { "import-x/resolver-next": [createTypeScriptImportResolver({ project: "tsconfig.json" })] },
    rules: { "import-x/no-restricted-paths": ["error", { zones: BOUNDARIES }] },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-expressions": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
);

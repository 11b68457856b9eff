// StrykerJS over the trainer (src/engine/tasks/train) and the reference ops, with the command runner and the
// tests that exercise them (scripts/mutate-test.mjs). Not part of CI: `npm run mutate` (scripts/mutate.mjs) runs
// one group at a time, MUTATE_GROUP naming it.
import process from 'node:process';

const GROUPS = {
  // the training loop: the step, data order, learning rate, clipping, checkpoints and resume; log and error texts
  // (string literals) are left out, they are not behaviour these tests pin
  trainer: {
    // The whole files make 539 mutants, over an hour on two cores at ~10 s a mutant: by default the optimizer step
    // and the data order (Run.windowAt, Run.step), the schedule and checkpoint pruning; MUTATE_WHOLE=1 for all.
    // The line ranges must follow Run.windowAt..Run.step and prune() when those move.
    mutate: process.env.MUTATE_WHOLE
      ? ['src/engine/tasks/train/trainer.ts', 'src/engine/tasks/train/checkpoint.ts', 'src/engine/tasks/train/schedule.ts']
      : ['src/engine/tasks/train/trainer.ts:309-401', 'src/engine/tasks/train/checkpoint.ts:78-82', 'src/engine/tasks/train/schedule.ts'],
    tests: [
      'test/golden/golden-train.test.ts#trajectory',
      'test/unit/trainer-loop.test.ts',
      'test/unit/trainer-init.test.ts',
      'test/unit/optim.test.ts',
    ],
  },
};
// each reference op with its own test file
for (const op of [
  'rmsnorm',
  'rope',
  'swiglu',
  'dropout',
  'cross_entropy',
  'adamw',
  'attention',
  'elementwise',
  'embedding',
  'matmul',
  'qmatmul',
])
  GROUPS[`op-${op}`] = { mutate: [`src/engine/ops/${op}/reference.ts`], tests: [`test/ops/${op}.test.ts`] };

const name = process.env.MUTATE_GROUP ?? 'trainer';
const g = GROUPS[name];
if (!g) throw new Error(`MUTATE_GROUP ${name}: one of ${Object.keys(GROUPS).join(', ')}`);

export default {
  testRunner: 'command',
  commandRunner: { command: `node scripts/mutate-test.mjs ${g.tests.join(' ')}` },
  mutate: g.mutate,
  mutator: { excludedMutations: ['StringLiteral'] },
  ignorePatterns: ['dist', 'dist-*', 'reports', '.vscode-test', 'runs', '*.vsix'],
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 1),
  // on top of 1.5 × the dry run's time; a looping mutant of a reference op otherwise costs its full wait
  timeoutMS: 8000,
  reporters: ['progress', 'clear-text', 'json'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
export const GROUP_NAMES = Object.keys(GROUPS);

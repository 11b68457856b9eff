// ESLint (flat config): typescript-eslint's recommended rules over src/, webview/ and test/; formatting is
// Prettier's (eslint-config-prettier turns off the rules it would fight). `npm run lint` runs both; `npm test` too.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-test*/**',
      'node_modules/**',
      '.vscode-test/**',
      'test-output/**',
      '.gpu/**',
      '.stryker-tmp/**',
      'dist-mutate/**',
      'scratch/**',
      'reports/**',
      '.test-deps/**',
      '.bench/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['**/*.ts'],
    rules: {
      // the compiler's noUnusedLocals already reports these, with the same meaning
      '@typescript-eslint/no-unused-vars': 'off',
      // `any` is an escape hatch, mostly where raw JSON is read before it is checked: shown, not fatal
      '@typescript-eslint/no-explicit-any': 'warn',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
      // `let x!: T` assigned once after the closures that read it are made (the sidecar client's callbacks)
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['bin/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);

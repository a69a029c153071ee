// Lint what the workflow sandbox needs: workflows/ stays deterministic (no Node built-ins, no
// provider SDKs or database clients, no process.env), promises are never left floating, and
// type-only imports say so.
const tseslint = require('typescript-eslint');

const nodeBuiltins = [
  'fs',
  'path',
  'os',
  'child_process',
  'crypto',
  'net',
  'http',
  'https',
  'stream',
  'util',
  'events',
  'worker_threads',
  'dns',
  'tls',
  'zlib',
];

module.exports = tseslint.config(
  { ignores: ['dist/', 'dist-bench/', 'node_modules/', '.venv/', '.lifeboat/', 'coverage/', '*.js', 'bin/'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts', 'test/replay/fixtures/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins,
            ...nodeBuiltins.map((m) => `node:${m}`),
            'pg',
            'pino',
            '@temporalio/client',
            '@temporalio/worker',
            '@temporalio/activity',
          ].map((name) => ({
            name,
            message: 'workflows/ runs in the deterministic sandbox: only @temporalio/workflow and `import type`',
            allowTypeImports: true,
          })),
          patterns: [
            {
              group: ['@aws-sdk/*', '@google-cloud/*'],
              message: 'provider SDKs belong in activities/providers/',
              allowTypeImports: true,
            },
            {
              group: ['../activities', '../activities/*', '../worker/*', '../scripts/*', '../services/*', '../cli/*'],
              message: 'workflows may import only types from activities',
              allowTypeImports: true,
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'workflows never read the environment: pass it in the input' },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'workflows never touch the process' },
        { name: 'setTimeout', message: 'use sleep() from @temporalio/workflow' },
      ],
    },
  },
);

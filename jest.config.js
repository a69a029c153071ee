const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }] };

/** @type {import('jest').Config} */
module.exports = {
  maxWorkers: 1,
  verbose: true,
  // A global option (a project's own testTimeout is ignored): the stack's tests start real servers.
  testTimeout: 120_000,
  projects: [
    {
      displayName: 'stack',
      testEnvironment: 'node',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/runbooks/'],
      transform,
      // Workflow and integration tests start real servers: one file at a time, generous timeouts.
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    {
      // Runbooks on scripted activities (test/runbooks/harness.ts): each file starts its own
      // time-skipping Temporal test server (and a dev server for its cancellation tests), nothing
      // else; the stack's global setup does not run for them.
      displayName: 'runbooks',
      testEnvironment: 'node',
      roots: ['<rootDir>/test/runbooks'],
      testMatch: ['**/*.test.ts'],
      transform,
    },
  ],
};

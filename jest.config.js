/** Integration and e2e suites run against real PostgreSQL (and, later, Redis). */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
  testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
  },
  moduleNameMapper: {
    '^@didcomm-mpr/protocol$': '<rootDir>/libs/protocol/src',
    '^@didcomm-mpr/client$': '<rootDir>/libs/client/src',
    '^@didcomm-mpr/embedded-postgres$': '<rootDir>/libs/embedded-postgres/src',
    '^@didcomm-mpr/test-kit$': '<rootDir>/libs/test-kit/src',
  },
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};

import { defineConfig, devices } from '@playwright/test';

// scripts/e2e starts the real server (fresh database) and passes its address.
const baseURL = process.env.BASE_URL ?? 'http://127.0.0.1:3000';
// The sandbox dashboard and dev mailbox ask for the token the server printed at start-up;
// scripts/e2e chooses it and every context starts with the cookie that link would set.
const sandboxToken = process.env.SANDBOX_TOKEN;
const storageState = sandboxToken
  ? {
      cookies: [{
        name: 'sandbox_token', value: sandboxToken, domain: new URL(baseURL).hostname, path: '/',
        expires: -1, httpOnly: true, secure: false, sameSite: 'Strict' as const,
      }],
      origins: [],
    }
  : undefined;

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: true,
  workers: 2,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL,
    storageState,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      // Without the background-networking flags Chromium keeps dialling the closed network.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    },
  },
  projects: [
    { name: 'desktop', use: { ...devices['Desktop Chrome'], channel: undefined }, testIgnore: /responsive\.spec\.ts/ },
    { name: 'phone', use: { ...devices['Pixel 7'], channel: undefined }, testMatch: /responsive\.spec\.ts/ },
  ],
});

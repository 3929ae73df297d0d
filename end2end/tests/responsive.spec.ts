import { test, expect } from '@playwright/test';
import { gotoHydrated } from './helpers';

// Runs in the "phone" project (Pixel 7 viewport).
for (const path of ['/', '/pricing', '/signup', '/login']) {
  test(`${path} fits a phone screen without sideways scrolling`, async ({ page }) => {
    await gotoHydrated(page, path);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await expect(page.getByRole('link', { name: 'Pricing' })).toBeVisible();
  });
}

import { defineConfig } from 'vite';

/**
 * `npm run build:web` (= `vite build web`): web/ → web/dist, served by the router
 * (router/routes/dashboard.ts): the dashboard (index.html, at `/`) and the demo (demo.html, at `/demo`).
 */
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Everything as files under /assets: the pages' CSP allows only their own origin.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: {
        index: `${import.meta.dirname}/index.html`,
        demo: `${import.meta.dirname}/demo.html`,
      },
    },
  },
});

import { defineConfig } from 'vite';

/** `npm run build:web` (= `vite build web`): web/ → web/dist, served by the router (router/routes/dashboard.ts). */
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Everything as files under /assets: the page's CSP allows only its own origin.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});

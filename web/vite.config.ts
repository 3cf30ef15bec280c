/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'
import { serviceWorker } from './scripts/sw-plugin.ts'

// The API server for `npm run dev` (vite proxies /api to it): NEXUS_API=http://127.0.0.1:8765
const api = process.env.NEXUS_API ?? 'http://127.0.0.1:8765'

export default defineConfig({
  plugins: [react(), serviceWorker()],
  build: {
    outDir: '../src/nexus/static/web',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    port: 5173,
    proxy: { '/api': { target: api, ws: true, changeOrigin: false } },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
    css: false,
    pool: 'threads',
    maxWorkers: 2,
  },
})

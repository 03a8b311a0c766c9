// Builds the annotation app into Django's static folder with fixed names (no hashes, one chunk), so the
// template can include {% static 'annotation/app/app.js' %} and {% static 'annotation/app/app.css' %}.
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

export default defineConfig({
  plugins: [vue()],
  base: '/static/annotation/app/',
  build: {
    outDir: '../static/annotation/app',
    emptyOutDir: true,
    cssCodeSplit: false,
    modulePreload: false,
    rollupOptions: {
      input: 'src/main.js',
      output: {
        entryFileNames: 'app.js',
        chunkFileNames: 'app-[name].js',
        assetFileNames: 'app.[ext]',
        codeSplitting: false,
      },
    },
  },
  // `npm test`: the specs of the pure helpers, in Node (they touch no DOM).
  test: {
    include: ['tests/**/*.spec.js'],
    environment: 'node',
  },
})

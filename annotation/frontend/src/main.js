import { createApp } from 'vue'
import App from './App.vue'
import './app.css'

const root = document.getElementById('annotation-app')
if (root) {
  createApp(App, {
    projectId: Number(root.dataset.projectId),
    mode: root.dataset.mode === 'review' ? 'review' : 'label',
    username: root.dataset.username || '',
  }).mount(root)
}

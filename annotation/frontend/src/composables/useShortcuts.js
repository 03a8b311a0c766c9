// One document-wide keymap for a page: {name: handler}, names as shortcutName() gives them.
import { onBeforeUnmount, onMounted } from 'vue'
import { isTyping, shortcutName } from '../shortcuts.js'

/**
 * Listen for the keys of `keymap` while the calling component is mounted. Keys typed into a form field are
 * left alone. A handler gets the event; the browser's own action for the key is prevented unless the
 * handler returns false (then the key was not for it, e.g. Space with no label highlighted scrolls). With Shift
 * held, an entry 'Shift+NAME' (as 'Shift+ArrowUp') comes before 'NAME'.
 */
export function useShortcuts(keymap) {
  function onKey(event) {
    if (isTyping(event.target)) return
    const name = shortcutName(event)
    const handler = name === null ? undefined : (event.shiftKey && keymap[`Shift+${name}`]) || keymap[name]
    if (handler && handler(event) !== false) event.preventDefault()
  }
  onMounted(() => document.addEventListener('keydown', onKey))
  onBeforeUnmount(() => document.removeEventListener('keydown', onKey))
}

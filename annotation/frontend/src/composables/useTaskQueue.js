// The annotator's queue, shared by every task type: fetch the next task, submit an answer, skip, undo, ask
// a question, and the status line that says how each went. TaskLayout renders it (through provide/inject).
import { computed, inject, nextTick, onMounted, provide, ref } from 'vue'
import { get, post } from '../api.js'
import { describeValue, suggestionText } from '../values.js'

const TASK_QUEUE = Symbol('task queue')

/**
 * The queue of `project` for the calling task component, which owns the answer.
 *
 * @param project the project record from the API
 * @param answer `value()` gives the answer to submit (null while nothing is chosen yet); `reset()` clears it
 *   when another task is shown; `restore(value)` shows a stored answer chosen again (after an undo)
 */
export function useTaskQueue(project, answer) {
  const task = ref(null)
  const done = ref(false)
  const loading = ref(true)
  const busy = ref(false)
  const status = ref({ kind: 'info', text: '' })
  const panel = ref('') // '' | 'skip' | 'ask'
  const skipReason = ref('')
  const question = ref('')
  const progress = ref(null) // GET /api/projects/ID/progress/; refreshed after every change
  let panelInput = null
  let shownAt = 0

  const text = computed(() => (task.value ? task.value.item.text || '' : ''))
  const suggestion = computed(() => (task.value ? suggestionText(task.value.prediction, text.value) : ''))

  function say(message, kind = 'info') {
    status.value = { kind, text: message }
  }

  function show(payload, previous) {
    task.value = payload
    done.value = false
    panel.value = ''
    answer.reset()
    if (previous !== undefined && previous !== null) answer.restore(previous)
    shownAt = performance.now()
  }

  async function loadProgress() {
    const res = await get(`/api/projects/${project.id}/progress/`)
    if (res.ok) progress.value = res.data // a failed refresh keeps the last figures; the queue goes on
  }

  async function loadNext() {
    loading.value = true
    const res = await post(`/api/projects/${project.id}/next/`)
    loading.value = false
    loadProgress()
    if (res.status === 204) {
      task.value = null
      done.value = true
    } else if (res.ok) show(res.data)
    else say(res.data.detail, 'error')
  }

  async function submit() {
    if (!task.value || busy.value) return
    const value = answer.value()
    if (value === null) return say('Choose a label first (number keys or arrows).', 'error')
    busy.value = true
    try {
      const leadTime = (performance.now() - shownAt) / 1000
      const res = await post(`/api/tasks/${task.value.id}/annotations/`, { value, lead_time: leadTime })
      if (!res.ok) return say(`Not saved: ${res.data.detail}`, 'error') // the task and its answer stay on screen
      say(`Saved: ${describeValue(res.data.value, text.value)}`, 'ok')
      await loadNext() // keys stay blocked until the next task is on screen
    } finally {
      busy.value = false
    }
  }

  async function skip() {
    if (!task.value || busy.value) return
    const reason = skipReason.value.trim()
    if (!reason) return say('A skip needs a reason.', 'error')
    busy.value = true
    try {
      const res = await post(`/api/tasks/${task.value.id}/skip/`, { reason })
      if (!res.ok) return say(`Not skipped: ${res.data.detail}`, 'error')
      skipReason.value = ''
      panel.value = ''
      say('Skipped.', 'ok')
      await loadNext()
    } finally {
      busy.value = false
    }
  }

  async function undo() {
    if (busy.value) return
    busy.value = true
    const res = await post(`/api/projects/${project.id}/undo/`)
    busy.value = false
    if (!res.ok) return say(`Cannot undo: ${res.data.detail}`, 'error')
    show(res.data.task, res.data.value)
    const earlier = res.data.value === undefined ? '' : ` with your answer ${describeValue(res.data.value, text.value)}`
    say(`Undone: the previous task is back${earlier}; change it or press Enter.`, 'ok')
    loadProgress()
  }

  async function ask() {
    const body = { text: question.value.trim() }
    if (!body.text) return say('Type a question first.', 'error')
    if (task.value) body.task = task.value.id
    const res = await post(`/api/projects/${project.id}/questions/`, body)
    if (!res.ok) return say(`Question not sent: ${res.data.detail}`, 'error')
    question.value = ''
    panel.value = ''
    say('Question sent to the project managers.', 'ok')
  }

  async function openPanel(name) {
    panel.value = name
    await nextTick()
    if (panelInput) panelInput.focus()
  }

  function closePanel() {
    panel.value = ''
  }

  /**
   * The page's keymap: the queue's own keys plus `taskKeys`, the task type's. Undo and next work with no task
   * on screen (after the last one, or when a hold expired); every other key waits for a task.
   */
  function keymap(taskKeys) {
    const withTask = { Enter: submit, s: () => openPanel('skip'), '?': () => openPanel('ask'), ...taskKeys }
    const guarded = Object.entries(withTask).map(([name, run]) => [name, (event) => (task.value ? run(event) : false)])
    return { 'Ctrl+z': undo, u: undo, n: loadNext, ...Object.fromEntries(guarded) }
  }

  const queue = {
    project,
    task,
    text,
    suggestion,
    done,
    loading,
    busy,
    status,
    progress,
    panel,
    skipReason,
    question,
    say,
    submit,
    skip,
    undo,
    ask,
    openPanel,
    closePanel,
    keymap,
    // Both panels bind their input here; a panel that closes as the other opens must not unbind the new one.
    bindPanelInput: (el) => {
      if (el) panelInput = el
    },
  }
  provide(TASK_QUEUE, queue)
  onMounted(loadNext)
  return queue
}

/** The queue of the task component this one is rendered in. */
export function injectTaskQueue() {
  return inject(TASK_QUEUE)
}

// The zoom and pan of an image, and its keys: + and = zoom in, - out, f fits; Shift with an arrow pans.
import { computed, ref } from 'vue'
import { clampPan, panAround, panLimit, stepZoom } from '../zoom.js'

const PAN_STEP = 48 // px per arrow key press

/** Zoom (1 = fitted) and pan (px from the centre) of the image viewer; the viewer sets the sizes it measures. */
export function useZoom() {
  const zoom = ref(1)
  const x = ref(0)
  const y = ref(0)
  const fit = ref(1) // the scale at which the image fits its box
  const natural = ref({ width: 0, height: 0 })
  const box = ref({ width: 0, height: 0 })
  const scale = computed(() => fit.value * zoom.value)

  function clamp() {
    x.value = clampPan(x.value, panLimit(natural.value.width * scale.value, box.value.width))
    y.value = clampPan(y.value, panLimit(natural.value.height * scale.value, box.value.height))
  }

  /** Zoom one step in (+1) or out (-1), keeping `point` (px from the box's centre) in place. */
  function step(direction, point = { x: 0, y: 0 }) {
    const before = scale.value
    zoom.value = stepZoom(zoom.value, direction)
    x.value = panAround(x.value, point.x, before, scale.value)
    y.value = panAround(y.value, point.y, before, scale.value)
    clamp()
  }

  function pan(dx, dy) {
    x.value += dx
    y.value += dy
    clamp()
  }

  function reset() {
    zoom.value = 1
    x.value = 0
    y.value = 0
  }

  const keys = {
    '+': () => step(1),
    '=': () => step(1),
    '-': () => step(-1),
    f: reset,
    F: reset,
    'Shift+ArrowLeft': () => pan(PAN_STEP, 0),
    'Shift+ArrowRight': () => pan(-PAN_STEP, 0),
    'Shift+ArrowUp': () => pan(0, PAN_STEP),
    'Shift+ArrowDown': () => pan(0, -PAN_STEP),
  }

  return { zoom, x, y, fit, natural, box, scale, step, pan, reset, clamp, keys }
}

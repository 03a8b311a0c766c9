// A project's labels, their keys and the highlight the arrow keys move through them.
import { computed, ref } from 'vue'
import { labelKeys } from '../hotkeys.js'
import { colourClass, cycle } from '../labels.js'

/** The labels of `project`, the key of each (null for none), a highlighted index (-1 for none) and what moves it. */
export function useLabelList(project) {
  const labels = computed(() => project.labels)
  const keys = computed(() => labelKeys(project.labels, project.hotkeys))
  const highlighted = ref(-1)

  return {
    labels,
    keys,
    highlighted,
    /** Whether `index` names a label. */
    has: (index) => index >= 0 && index < labels.value.length,
    /** Move the highlight one label down (+1) or up (-1), wrapping round. */
    move: (step) => {
      highlighted.value = cycle(highlighted.value, step, labels.value.length)
    },
    /** The colour class of a label name: the same colour on its button, its spans and its chips. */
    colourOf: (name) => colourClass(labels.value.indexOf(name)),
  }
}

// One label per task (text or image classification): the highlighted label is the answer.
import { hotkeyMap } from '../hotkeys.js'
import { useLabelList } from './useLabelList.js'

/** The choice, its keys (each label's key chooses it, up and down move) and the answer for useTaskQueue. */
export function useSingleChoice(project) {
  const { labels, keys, highlighted, has, move } = useLabelList(project)

  function choose(index) {
    if (has(index)) highlighted.value = index
  }

  return {
    labels,
    labelKeys: keys,
    checked: highlighted,
    choose,
    keys: { ...hotkeyMap(keys.value, choose), ArrowUp: () => move(-1), ArrowDown: () => move(1) },
    answer: {
      value: () => (highlighted.value >= 0 ? labels.value[highlighted.value] : null),
      reset: () => {
        highlighted.value = -1
      },
      // After an undo: the answer given before, selected again.
      restore: (value) => {
        highlighted.value = labels.value.indexOf(value)
      },
    },
  }
}

// One label per task (text or image classification): the highlighted label is the answer.
import { digitKeys } from '../shortcuts.js'
import { useLabelList } from './useLabelList.js'

/** The choice, its keys (1-9 choose, up and down move) and the answer for useTaskQueue. */
export function useSingleChoice(project) {
  const { labels, highlighted, has, move } = useLabelList(project)

  function choose(index) {
    if (has(index)) highlighted.value = index
  }

  return {
    labels,
    checked: highlighted,
    choose,
    keys: { ...digitKeys(choose), ArrowUp: () => move(-1), ArrowDown: () => move(1) },
    answer: {
      value: () => (highlighted.value >= 0 ? labels.value[highlighted.value] : null),
      reset: () => {
        highlighted.value = -1
      },
    },
  }
}

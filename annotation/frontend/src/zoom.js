// Pure helpers of the image viewer: the scale that fits an image in a box, zoom steps, and pan limits.

export const ZOOM_STEP = 1.25
export const MIN_ZOOM = 1 // the fitted size: zooming out further only wastes the box
export const MAX_ZOOM = 32

/**
 * The scale at which an image of `width` x `height` pixels fits in a box of `boxWidth` x `boxHeight`, whole and
 * as large as possible (a 28-pixel digit is scaled up; a photo larger than the box is scaled down).
 */
export function fitScale(width, height, boxWidth, boxHeight) {
  if (!(width > 0 && height > 0 && boxWidth > 0 && boxHeight > 0)) return 1
  return Math.min(boxWidth / width, boxHeight / height)
}

/** `zoom` one step in (+1) or out (-1), kept between MIN_ZOOM and MAX_ZOOM. */
export function stepZoom(zoom, direction, step = ZOOM_STEP) {
  return Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, direction > 0 ? zoom * step : zoom / step))
}

/** How far the image's centre may move from the box's: no further than shows its edge at the box's edge. */
export function panLimit(shownSize, boxSize) {
  return Math.max(0, (shownSize - boxSize) / 2)
}

/** `value` kept within [-limit, limit]. */
export function clampPan(value, limit) {
  return Math.min(limit, Math.max(-limit, value))
}

/**
 * The pan that keeps the image point under `point` (relative to the box's centre) where it is while the scale
 * goes from `scale` to `next`: zooming around the mouse pointer.
 */
export function panAround(pan, point, scale, next) {
  return point - ((point - pan) * next) / scale
}

import { describe, expect, it } from 'vitest'
import { markedRuns, recordHref } from './features'

describe('markedRuns', () => {
  it('keeps only the <mark> highlights of escaped HTML and unescapes the text', () => {
    expect(markedRuns('Q&amp;A about <mark>launch</mark> &lt;b&gt; &#x27;x&#x27;')).toEqual([
      { text: 'Q&A about ', mark: false },
      { text: 'launch', mark: true },
      { text: " <b> 'x'", mark: false },
    ])
  })
  it('drops any other tag', () => {
    expect(markedRuns('<img src=x onerror=alert(1)><mark>a</mark>')).toEqual([{ text: 'a', mark: true }])
  })
})

describe('recordHref', () => {
  it('sends tasks and notes to their apps and everything else to the generic page', () => {
    expect(recordHref('tasks', 'tasks', 'T1')).toBe('/tasks/t/T1')
    expect(recordHref('notes', 'notes', 'N1')).toBe('/notes/n/N1')
    expect(recordHref('notes', 'notebooks', 'B1')).toBe('/r/notes/notebooks/B1')
  })
})

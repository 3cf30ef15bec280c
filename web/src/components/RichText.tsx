// A small rich-text editor (contentEditable + document.execCommand) and a viewer for HTML
// the server has sanitised. Only server-sanitised HTML is ever put into the DOM as markup:
// the editor's starting content comes from the server, pasted content is inserted as plain
// text, and the toolbar inserts only its own markup around escaped text.
import { useEffect, useRef, type KeyboardEvent, type MouseEvent } from 'react'
import { Icon } from './Icon'

/** HTML the server sanitised (a note body, any `format: "html"` field). */
export function SanitisedHtml({ html, className }: { html: string; className?: string }) {
  return <div className={`rich${className ? ' ' + className : ''}`} dangerouslySetInnerHTML={{ __html: html }} />
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

interface Tool {
  id: string
  label: string
  icon?: string
  text?: string
  key?: string
  run: () => void
}

function exec(cmd: string, value?: string) {
  document.execCommand(cmd, false, value)
}

function block(tag: string) {
  // Toggle: formatting a heading/quote as itself turns it back into a paragraph.
  const current = String(document.queryCommandValue('formatBlock') || '').toLowerCase()
  exec('formatBlock', current === tag ? 'p' : tag)
}

function selectedText(): string {
  return window.getSelection()?.toString() ?? ''
}

export interface RichTextEditorProps {
  id: string
  /** Server-sanitised HTML to start from; the editor re-reads it when `resetKey` changes. */
  initialHtml: string
  resetKey?: string | number
  onChange: (html: string) => void
  label?: string
  labelledBy?: string
  describedBy?: string
  readOnly?: boolean
  placeholder?: string
}

export function RichTextEditor({ id, initialHtml, resetKey, onChange, label, labelledBy, describedBy, readOnly, placeholder }: RichTextEditorProps) {
  const ref = useRef<HTMLDivElement>(null)

  useEffect(() => {
    if (ref.current) ref.current.innerHTML = initialHtml // server-sanitised
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [resetKey])

  const changed = () => ref.current && onChange(ref.current.innerHTML)
  const apply = (fn: () => void) => {
    ref.current?.focus()
    fn()
    changed()
  }

  const tools: Tool[] = [
    { id: 'bold', label: 'Bold', text: 'B', key: 'b', run: () => exec('bold') },
    { id: 'italic', label: 'Italic', text: 'I', key: 'i', run: () => exec('italic') },
    { id: 'h2', label: 'H2 heading', text: 'H2', run: () => block('h2') },
    { id: 'h3', label: 'H3 subheading', text: 'H3', run: () => block('h3') },
    { id: 'ul', label: 'Bulleted list', icon: 'list', run: () => exec('insertUnorderedList') },
    { id: 'ol', label: 'Numbered list', icon: 'list-ordered', run: () => exec('insertOrderedList') },
    {
      id: 'checklist',
      label: 'Checklist',
      icon: 'check-square',
      run: () => exec('insertHTML', `<ul><li><input type="checkbox"> ${escapeHtml(selectedText()) || '&#8203;'}</li></ul>`),
    },
    {
      id: 'link',
      label: 'Link',
      icon: 'link',
      key: 'k',
      run: () => {
        const url = window.prompt('Link address (https://…)', 'https://')
        if (url && /^(https?:|mailto:)/i.test(url.trim())) exec('createLink', url.trim())
      },
    },
    { id: 'code', label: 'Code', text: '</>', run: () => exec('insertHTML', `<code>${escapeHtml(selectedText()) || '&#8203;'}</code>`) },
    { id: 'quote', label: 'Quote', text: '“', run: () => block('blockquote') },
  ]

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (!(e.ctrlKey || e.metaKey) || e.altKey) return
    const tool = tools.find((t) => t.key === e.key.toLowerCase())
    if (tool) {
      e.preventDefault()
      apply(tool.run)
    }
  }

  // Checkboxes inside contentEditable do not toggle by themselves.
  const onClick = (e: MouseEvent<HTMLDivElement>) => {
    const t = e.target as HTMLElement
    if (t instanceof HTMLInputElement && t.type === 'checkbox' && !readOnly) {
      e.preventDefault()
      if (t.hasAttribute('checked')) t.removeAttribute('checked')
      else t.setAttribute('checked', '')
      changed()
    }
  }

  return (
    <div className={`rte${readOnly ? ' rte-readonly' : ''}`}>
      {!readOnly && (
        <div className="rte-toolbar" role="toolbar" aria-label="Formatting" aria-controls={id}>
          {tools.map((t) => (
            <button
              key={t.id}
              type="button"
              className={`rte-btn rte-${t.id}`}
              title={t.key ? `${t.label} (Ctrl+${t.key.toUpperCase()})` : t.label}
              aria-label={t.label}
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => apply(t.run)}
            >
              {t.icon ? <Icon name={t.icon} size={16} /> : <span aria-hidden="true">{t.text}</span>}
            </button>
          ))}
        </div>
      )}
      <div
        ref={ref}
        id={id}
        className="rich rte-body"
        role="textbox"
        aria-multiline="true"
        aria-label={labelledBy ? undefined : label}
        aria-labelledby={labelledBy}
        aria-describedby={describedBy}
        aria-readonly={readOnly || undefined}
        data-placeholder={placeholder}
        contentEditable={!readOnly}
        suppressContentEditableWarning
        tabIndex={0}
        onInput={changed}
        onBlur={changed}
        onKeyDown={onKeyDown}
        onClick={onClick}
        onPaste={(e) => {
          // Foreign markup never enters the page: paste as text (the server would clean it anyway).
          e.preventDefault()
          exec('insertText', e.clipboardData.getData('text/plain'))
          changed()
        }}
      />
    </div>
  )
}

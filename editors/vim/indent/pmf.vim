" Vim indent file for PMF: one level inside `{ }`, `( )` and `[ ]`.
if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal indentexpr=GetPmfIndent(v:lnum)
setlocal indentkeys=0{,0},0),0],!^F,o,O
setlocal nosmartindent nocindent
let b:undo_indent = 'setlocal indentexpr< indentkeys< smartindent< cindent<'

if exists('*GetPmfIndent')
  finish
endif

" Net count of opening brackets on a line, ignoring strings and comments.
function! s:Balance(line) abort
  let l:line = substitute(a:line, '"\%([^"\\]\|\\.\)*"', '""', 'g')
  let l:line = substitute(l:line, '/\*.\{-}\*/', '', 'g')
  let l:line = substitute(l:line, '//.*$', '', '')
  let l:open = len(substitute(l:line, '[^{(\[]', '', 'g'))
  let l:close = len(substitute(l:line, '[^})\]]', '', 'g'))
  return l:open - l:close
endfunction

" Whether a line starts inside a block comment (a line opening one does not).
function! s:InBlockComment(lnum) abort
  return getline(a:lnum) !~# '^\s*/\*'
        \ && synIDattr(synID(a:lnum, indent(a:lnum) + 1, 1), 'name') ==# 'pmfBlockComment'
endfunction

function! GetPmfIndent(lnum) abort
  " Inside a block comment: keep what the author wrote.
  if s:InBlockComment(a:lnum)
    return -1
  endif
  " The reference is the previous line of code, not a block comment's inside.
  let l:prev = prevnonblank(a:lnum - 1)
  while l:prev > 0 && s:InBlockComment(l:prev)
    let l:prev = prevnonblank(l:prev - 1)
  endwhile
  if l:prev == 0
    return 0
  endif
  let l:ind = indent(l:prev)
  let l:prevline = getline(l:prev)
  " A line closing a bracket opened on an earlier line goes back one level.
  if l:prevline =~# '^\s*[})\]]'
    let l:ind += shiftwidth()
  endif
  let l:ind += shiftwidth() * s:Balance(l:prevline)
  if getline(a:lnum) =~# '^\s*[})\]]'
    let l:ind -= shiftwidth()
  endif
  return l:ind < 0 ? 0 : l:ind
endfunction

" Vim filetype plugin for PMF policy files.
if exists('b:did_ftplugin')
  finish
endif
let b:did_ftplugin = 1

let s:cpo_save = &cpo
set cpo&vim

" Comments: `// line` and `/* block */` (block comments do not nest).
setlocal commentstring=//\ %s
setlocal comments=s1:/*,mb:*,ex:*/,://
setlocal formatoptions-=t formatoptions+=croql

" Two spaces is the canonical indentation. Declarations start in column 0;
" everything inside a block is indented (see indent/pmf.vim).
setlocal expandtab shiftwidth=2 softtabstop=2 tabstop=8
setlocal autoindent

" Names are ASCII letters, digits and `_`.
setlocal iskeyword=@,48-57,_

let b:undo_ftplugin = 'setlocal commentstring< comments< formatoptions< expandtab<'
      \ . ' shiftwidth< softtabstop< tabstop< autoindent< iskeyword<'

let &cpo = s:cpo_save
unlet s:cpo_save

" Vim syntax file
" Language:    PMF (KWANUS Partner Migration Framework policy language)
" Filenames:   *.pmf
" Reference:   grammar/pmf.pest, docs/language.md
"
" A top-level declaration starts in column 0 with its keyword; an indented
" keyword does not start one (the parser glues it to the declaration before),
" so declaration keywords are highlighted in column 0 only.

if exists('b:current_syntax')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match
syn iskeyword @,48-57,_

" ------------------------------------------------------------------ operators
" Defined first: later items win, so comments win over `/`.
syn match pmfOperator /==\|!=\|<=\|>=\|->\|\.\.=\|[<>+*\/-]/
syn keyword pmfOperatorWord and or in
syn match pmfOperatorWord /\<not\>/
syn match pmfOperatorWord /\<not\_s\+in\>/

" ------------------------------------------------------------------ literals
syn match pmfNumber /\<\d\+\%(\.\d\+\)\=\>/
syn match pmfVersion /\<\d\+\.\d\+\%(\.\d\+\)\+\%([-+][0-9A-Za-z.-]\+\)*/
syn keyword pmfBoolean true false

syn match pmfEscape contained /\\\%(.\|$\)/
syn region pmfString start=/"/ skip=/\\\\\|\\"/ end=/"\|\\\@<!$/ contains=pmfEscape,@Spell
" A well-formed public key of a `key` declaration (defined after strings: it wins).
syn match pmfPublicKey /"ed25519:[0-9a-f]\{64}"/

" ------------------------------------------------------------------ names
syn match pmfBuiltin /\<\%(partner\|target\|observed\)\ze\./
syn keyword pmfBuiltinConstant compatible sustainable
syn match pmfFunction /\<\%(len\|min\|max\|abs\)\ze\s*(/
syn match pmfMember /\.\zs\h\w*/

" `name:` starts a rule, a check or a partner field; in a record, it may also
" follow `{` or `,` (a test's `metrics: { stability: 90, compatibility: 88 }`).
syn match pmfLabel /^\s*\zs\h\w*\ze\s*:/
syn match pmfLabel /\%([{,]\s*\)\@<=\h\w*\ze\s*:/

" Types in the partner schema.
syn match pmfType /\%(\%(:\|<\)\s*\)\@<=\%(bool\|number\|score\|string\|version\)\>/
syn match pmfType /\<set\ze\s*</

" Actions after `else` (rules), `->` (health bands) and `expect action`
" (tests); a test's expected outcomes and validation results.
syn match pmfAction /\%(\<else\s\+\|->\s*\|\<expect\s\+action\s\+\)\@<=\%(proceed\|monitor\|review\|fallback\|throttle\|restrict\|forced\)\>/
syn match pmfAction /\%(\<expect\s\+outcome\s\+\)\@<=\%(completed\|fell_back\|restricted\|awaiting_review\|throttled\|unchanged\)\>/
syn match pmfAction /\%(\<expect\s\+validation\s\+\)\@<=\%(passed\|inconclusive\|error\|failed\)\>/

" ------------------------------------------------------------------ keywords
syn keyword pmfKeyword extends governs covers
syn keyword pmfKeyword when reversible backward_compatible requires mapping approve by touches to
syn keyword pmfConstant governing previous_stable
syn keyword pmfKeyword weight from band
syn keyword pmfKeyword factor nextgroup=pmfDeclName skipwhite
syn keyword pmfKeyword fallible fail
syn keyword pmfKeyword phase nextgroup=pmfPhaseName skipwhite
syn match pmfKeyword /\<max\ze\s\+\d/
syn keyword pmfConditional else

" Tests: keywords only in their place, names elsewhere (`approved: 1` is a field).
syn match pmfKeyword /\<\%(expect\|approved\)\>\%(\s*:\)\@!/
syn match pmfKeyword /\%(\<expect\s\+\)\@<=\%(type\|band\|action\|outcome\|validation\|approvals\)\>/
syn match pmfKeyword /\%(\<approved\s\+\|\<expect\s\+\h\w*\s\+\)\@<=none\>/
syn match pmfKeyword /:\s*\zsnull\>/
syn match pmfKeyword /\<\%(partner\|target\|observed\)\ze\%(\s*\%({\|$\)\|\s\+like\>\)/
" `like NAME` after a test state's root or a fixture's name (`like` is a name
" elsewhere, `like: 1` a field).
syn match pmfLike /\%(\<\%(partner\|target\|observed\)\s\+\)\@<=like\>/ nextgroup=pmfDeclName skipwhite
syn match pmfLike /\%(^\%(override\s\+\)\=fixture\s\+\h\w*\s\+\)\@<=like\>/ nextgroup=pmfDeclName skipwhite

syn match pmfPhaseName contained /\h\w*/
syn match pmfDeclName contained /\h\w*/

" Declarations, in column 0 (the header may be indented at the top of a file).
syn match pmfDeclaration /^\s*\zspolicy\>/ nextgroup=pmfDeclName skipwhite
syn match pmfOverride /^override\>/
syn match pmfDeclaration /\%(^\%(override\s\+\)\=\)\@<=\%(authority\|category\|migration\|flow\|rite\|key\|fixture\)\>/ nextgroup=pmfDeclName skipwhite
syn match pmfDeclaration /\%(^\%(override\s\+\)\=\)\@<=\%(partner\|order\|compatibility\|sustainability\|validation\|health\|ceiling\|test\)\>/

" ------------------------------------------------------------------ comments
syn keyword pmfTodo contained TODO FIXME XXX NOTE
syn region pmfLineComment start=+//+ end=/$/ contains=pmfTodo,@Spell
syn region pmfBlockComment start=+/\*+ end=+\*/+ contains=pmfTodo,@Spell

hi def link pmfDeclaration     Structure
hi def link pmfOverride        StorageClass
hi def link pmfDeclName        Identifier
hi def link pmfKeyword         Keyword
hi def link pmfLike            Keyword
hi def link pmfConditional     Conditional
hi def link pmfConstant        Constant
hi def link pmfOperator        Operator
hi def link pmfOperatorWord    Operator
hi def link pmfNumber          Number
hi def link pmfVersion         Float
hi def link pmfBoolean         Boolean
hi def link pmfString          String
hi def link pmfEscape          SpecialChar
hi def link pmfPublicKey       Constant
hi def link pmfBuiltin         Special
hi def link pmfBuiltinConstant Constant
hi def link pmfFunction        Function
hi def link pmfMember          Identifier
hi def link pmfLabel           Function
hi def link pmfType            Type
hi def link pmfAction          Special
hi def link pmfPhaseName       Label
hi def link pmfTodo            Todo
hi def link pmfLineComment     Comment
hi def link pmfBlockComment    Comment

let b:current_syntax = 'pmf'

let &cpo = s:cpo_save
unlet s:cpo_save

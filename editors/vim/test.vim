" Headless highlighting test, sourced by test.sh with the sample file open.
" Each check: [line, text on that line, occurrence, expected syntax group].
" The group is read at the first character of the text.
let s:checks = [
      \ [1, '//', 1, 'pmfLineComment'],
      \ [1, 'TODO', 1, 'pmfTodo'],
      \ [2, 'policy', 1, 'pmfDeclaration'],
      \ [2, 'sample', 1, 'pmfDeclName'],
      \ [2, 'extends', 1, 'pmfKeyword'],
      \ [4, 'override', 1, 'pmfOverride'],
      \ [4, 'authority', 1, 'pmfDeclaration'],
      \ [4, 'TSC', 1, 'pmfDeclName'],
      \ [4, '"Technical', 1, 'pmfString'],
      \ [4, 'governs', 1, 'pmfKeyword'],
      \ [5, 'category', 1, 'pmfDeclaration'],
      \ [5, 'covers', 1, 'pmfKeyword'],
      \ [5, 'cpu', 1, 'pmfMember'],
      \ [7, 'partner', 1, 'pmfDeclaration'],
      \ [8, 'region', 1, 'pmfLabel'],
      \ [8, 'string', 1, 'pmfType'],
      \ [9, 'set', 1, 'pmfType'],
      \ [9, '<', 1, 'pmfOperator'],
      \ [9, 'string', 1, 'pmfType'],
      \ [10, 'number', 1, 'pmfType'],
      \ [10, 'score', 1, 'pmfType'],
      \ [13, 'migration', 1, 'pmfDeclaration'],
      \ [13, 'minor', 1, 'pmfDeclName'],
      \ [13, '\"', 1, 'pmfEscape'],
      \ [14, 'when', 1, 'pmfKeyword'],
      \ [14, 'target', 1, 'pmfBuiltin'],
      \ [14, 'version', 1, 'pmfMember'],
      \ [14, '==', 1, 'pmfOperator'],
      \ [14, 'partner', 1, 'pmfBuiltin'],
      \ [14, 'and', 1, 'pmfOperatorWord'],
      \ [14, 'compatible', 1, 'pmfBuiltinConstant'],
      \ [15, 'reversible', 1, 'pmfKeyword'],
      \ [16, 'backward_compatible', 1, 'pmfKeyword'],
      \ [17, 'requires', 1, 'pmfKeyword'],
      \ [17, 'mapping', 1, 'pmfKeyword'],
      \ [18, 'approve', 1, 'pmfKeyword'],
      \ [18, 'by', 1, 'pmfKeyword'],
      \ [18, 'governing', 1, 'pmfConstant'],
      \ [19, 'touches', 1, 'pmfKeyword'],
      \ [20, 'to', 1, 'pmfKeyword'],
      \ [20, 'previous_stable', 1, 'pmfConstant'],
      \ [21, '4.0.0-rc.1', 1, 'pmfVersion'],
      \ [24, 'order', 1, 'pmfDeclaration'],
      \ [26, 'compatibility', 1, 'pmfDeclaration'],
      \ [27, 'few', 1, 'pmfLabel'],
      \ [27, 'len', 1, 'pmfFunction'],
      \ [27, '-', 1, 'pmfOperator'],
      \ [27, '<=', 1, 'pmfOperator'],
      \ [27, '2', 1, 'pmfNumber'],
      \ [27, 'else', 1, 'pmfConditional'],
      \ [27, 'restrict', 1, 'pmfAction'],
      \ [28, '"root"', 1, 'pmfString'],
      \ [28, 'not in', 1, 'pmfOperatorWord'],
      \ [28, 'or', 1, 'pmfOperatorWord'],
      \ [28, 'not', 2, 'pmfOperatorWord'],
      \ [28, 'sustainable', 1, 'pmfBuiltinConstant'],
      \ [28, 'fallback', 1, 'pmfAction'],
      \ [31, 'sustainability', 1, 'pmfDeclaration'],
      \ [32, 'observed', 1, 'pmfBuiltin'],
      \ [32, '*', 1, 'pmfOperator'],
      \ [32, '/', 1, 'pmfOperator'],
      \ [32, 'forced', 1, 'pmfAction'],
      \ [35, 'health', 1, 'pmfDeclaration'],
      \ [36, 'factor', 1, 'pmfKeyword'],
      \ [36, 'stability', 1, 'pmfDeclName'],
      \ [36, 'weight', 1, 'pmfKeyword'],
      \ [36, '0.35', 1, 'pmfNumber'],
      \ [36, 'from', 1, 'pmfKeyword'],
      \ [37, 'band', 1, 'pmfKeyword'],
      \ [37, '90', 1, 'pmfNumber'],
      \ [37, '..=', 1, 'pmfOperator'],
      \ [37, '100', 1, 'pmfNumber'],
      \ [37, '->', 1, 'pmfOperator'],
      \ [37, 'proceed', 1, 'pmfAction'],
      \ [38, 'throttle', 1, 'pmfAction'],
      \ [41, 'flow', 1, 'pmfDeclaration'],
      \ [41, 'standard', 1, 'pmfDeclName'],
      \ [42, 'phase', 1, 'pmfKeyword'],
      \ [42, 'transition', 1, 'pmfPhaseName'],
      \ [42, 'fallible', 1, 'pmfKeyword'],
      \ [43, '->', 1, 'pmfOperator'],
      \ [43, 'max', 1, 'pmfKeyword'],
      \ [43, '2', 1, 'pmfNumber'],
      \ [44, 'fail', 1, 'pmfKeyword'],
      \ [47, 'ceiling', 1, 'pmfDeclaration'],
      \ [47, '<', 1, 'pmfOperator'],
      \ [47, '100.0.0', 1, 'pmfVersion'],
      \ [48, 'max', 1, 'pmfFunction'],
      \ [48, '/*', 1, 'pmfBlockComment'],
      \ [49, 'comment', 1, 'pmfBlockComment'],
      \ [50, 'rite', 1, 'pmfDeclaration'],
      \ [50, 'release', 1, 'pmfDeclName'],
      \ [50, '\n', 1, 'pmfEscape'],
      \ [51, 'test', 1, 'pmfDeclaration'],
      \ [51, '"guided', 1, 'pmfString'],
      \ [52, 'partner', 1, 'pmfKeyword'],
      \ [53, 'id', 1, 'pmfLabel'],
      \ [53, '"p-1"', 1, 'pmfString'],
      \ [53, 'version', 1, 'pmfLabel'],
      \ [53, '1.4.0', 1, 'pmfVersion'],
      \ [54, 'metrics', 1, 'pmfLabel'],
      \ [54, 'stability', 1, 'pmfLabel'],
      \ [54, '90', 1, 'pmfNumber'],
      \ [54, 'compatibility', 1, 'pmfLabel'],
      \ [54, 'null', 1, 'pmfKeyword'],
      \ [56, 'observed', 1, 'pmfKeyword'],
      \ [56, 'ok', 1, 'pmfLabel'],
      \ [56, 'partner', 1, 'pmfBuiltin'],
      \ [56, 'approved', 1, 'pmfLabel'],
      \ [57, 'approved', 1, 'pmfKeyword'],
      \ [57, 'TSC', 1, ''],
      \ [58, 'none', 1, 'pmfKeyword'],
      \ [59, 'expect', 1, 'pmfKeyword'],
      \ [59, 'type', 1, 'pmfKeyword'],
      \ [60, 'action', 1, 'pmfKeyword'],
      \ [60, 'monitor', 1, 'pmfAction'],
      \ [61, 'outcome', 1, 'pmfKeyword'],
      \ [61, 'completed', 1, 'pmfAction'],
      \ [62, 'approvals', 1, 'pmfKeyword'],
      \ [62, 'none', 1, 'pmfKeyword'],
      \ [64, 'key', 1, 'pmfDeclaration'],
      \ [64, 'TSC', 1, 'pmfDeclName'],
      \ [64, '"ed25519', 1, 'pmfPublicKey'],
      \ [64, '"Ada', 1, 'pmfString'],
      \ [65, 'override', 1, 'pmfOverride'],
      \ [65, 'key', 1, 'pmfDeclaration'],
      \ [65, 'ERC', 1, 'pmfDeclName'],
      \ [65, '"ed25519', 1, 'pmfString'],
      \ [66, 'fixture', 1, 'pmfDeclaration'],
      \ [66, 'routine', 1, 'pmfDeclName'],
      \ [67, 'like', 1, 'pmfLabel'],
      \ [69, 'fixture', 1, 'pmfDeclaration'],
      \ [69, 'weak', 1, 'pmfDeclName'],
      \ [69, 'like', 1, 'pmfLike'],
      \ [69, 'routine', 1, 'pmfDeclName'],
      \ [69, 'metrics', 1, 'pmfLabel'],
      \ [70, 'override', 1, 'pmfOverride'],
      \ [70, 'fixture', 1, 'pmfDeclaration'],
      \ [70, 'like', 1, 'pmfDeclName'],
      \ [70, 'like', 2, 'pmfLike'],
      \ [70, 'fixture', 2, 'pmfDeclName'],
      \ [72, 'partner', 1, 'pmfKeyword'],
      \ [72, 'like', 1, 'pmfLike'],
      \ [72, 'weak', 1, 'pmfDeclName'],
      \ [72, 'power', 1, 'pmfLabel'],
      \ [73, 'target', 1, 'pmfKeyword'],
      \ [73, 'like', 1, 'pmfLike'],
      \ [73, 'routine', 1, 'pmfDeclName'],
      \ [75, 'rite', 1, ''],
      \ ]

" Highlight groups the syntax groups must resolve to.
let s:links = [
      \ ['pmfDeclaration', 'Structure'],
      \ ['pmfKeyword', 'Keyword'],
      \ ['pmfLike', 'Keyword'],
      \ ['pmfLineComment', 'Comment'],
      \ ['pmfString', 'String'],
      \ ['pmfNumber', 'Number'],
      \ ['pmfOperator', 'Operator'],
      \ ['pmfAction', 'Special'],
      \ ]

let s:out = []
let s:failed = 0
if &filetype !=# 'pmf'
  call add(s:out, 'FAIL filetype is "' . &filetype . '", expected "pmf"')
  let s:failed += 1
endif
for [s:lnum, s:text, s:nth, s:want] in s:checks
  let s:line = getline(s:lnum)
  let s:col = -1
  for s:i in range(s:nth)
    let s:col = stridx(s:line, s:text, s:col + 1)
  endfor
  if s:col < 0
    call add(s:out, printf('FAIL %d: %s not found in %s', s:lnum, string(s:text), string(s:line)))
    let s:failed += 1
    continue
  endif
  let s:got = synIDattr(synID(s:lnum, s:col + 1, 1), 'name')
  let s:where = printf('%d:%d %s', s:lnum, s:col + 1, string(s:text))
  if s:got ==# s:want
    call add(s:out, printf('ok   %s is %s', s:where, s:want ==# '' ? '(none)' : s:want))
  else
    call add(s:out, printf('FAIL %s is %s, expected %s', s:where,
          \ s:got ==# '' ? '(none)' : s:got, s:want ==# '' ? '(none)' : s:want))
    let s:failed += 1
  endif
endfor
for [s:group, s:want] in s:links
  let s:got = get(get(hlget(s:group), 0, {}), 'linksto', '')
  if s:got ==# s:want
    call add(s:out, printf('ok   %s links to %s', s:group, s:want))
  else
    call add(s:out, printf('FAIL %s links to %s, expected %s', s:group, s:got, s:want))
    let s:failed += 1
  endif
endfor
" ftplugin settings.
for [s:opt, s:want] in [['&commentstring', '// %s'], ['&shiftwidth', 2], ['&expandtab', 1]]
  let s:got = eval(s:opt)
  if s:got ==# s:want
    call add(s:out, printf('ok   %s is %s', s:opt, string(s:want)))
  else
    call add(s:out, printf('FAIL %s is %s, expected %s', s:opt, string(s:got), string(s:want)))
    let s:failed += 1
  endif
endfor
" Indentation: re-indent the sample and compare with the file as written.
let s:before = getline(1, '$')
normal! gg=G
let s:after = getline(1, '$')
" The last line is deliberately indented wrong (an indented declaration).
if s:before[:-2] ==# s:after[:-2]
  call add(s:out, 'ok   gg=G keeps the sample''s indentation')
else
  for s:i in range(len(s:before) - 1)
    if s:before[s:i] !=# s:after[s:i]
      call add(s:out, printf('FAIL indent line %d: %s became %s', s:i + 1, string(s:before[s:i]), string(s:after[s:i])))
      let s:failed += 1
      break
    endif
  endfor
endif
call add(s:out, printf('vim: %d checks, %d failed', len(s:checks) + len(s:links) + 4, s:failed))
call writefile(s:out, $PMF_VIM_RESULT)

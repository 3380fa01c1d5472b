" PMF policy files.
autocmd BufRead,BufNewFile *.pmf setfiletype pmf

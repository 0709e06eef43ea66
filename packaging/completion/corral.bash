# SPDX-License-Identifier: MIT
# bash completion for corral(1). Self-contained: works with or without the
# bash-completion package.

# Programs, builtins and functions starting with $1, each once: compgen -c
# names a program once per PATH directory holding it (/bin and /usr/bin are
# one directory on merged-/usr systems) and again when it is also a builtin.
_corral_commands() {
    local -A seen=()
    local name
    while IFS= read -r name; do
        [[ -n ${seen[$name]+x} ]] && continue
        seen[$name]=1
        COMPREPLY+=("$name")
    done < <(compgen -c -- "$1")
}

_corral() {
    local cur prev cmd i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()

    local commands='run check sample status enqueue version help'

    # The subcommand: the first word after "corral".
    cmd=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return 0
    fi

    case $cmd in
        run)
            # After "--" (or once COMMAND started) complete the worker's command line.
            local j
            for ((j = i + 1; j < COMP_CWORD; j++)); do
                if [[ ${COMP_WORDS[j]} == -- ]]; then
                    if ((j + 1 == COMP_CWORD)); then
                        _corral_commands "$cur"
                    else
                        COMPREPLY=($(compgen -f -- "$cur"))
                    fi
                    return 0
                fi
            done
            case $prev in
                -c|--config)
                    COMPREPLY=($(compgen -f -X '!*.y*ml' -- "$cur") $(compgen -d -- "$cur"))
                    return 0 ;;
                --tasks|--joblog|--results)
                    COMPREPLY=($(compgen -f -- "$cur"))
                    [[ $prev == --tasks ]] && COMPREPLY+=($(compgen -W '-' -- "$cur"))
                    return 0 ;;
                --metrics)
                    COMPREPLY=($(compgen -W '127.0.0.1:9311 0.0.0.0:9311 [::1]:9311 none' -- "$cur"))
                    return 0 ;;
                --stop-timeout|--restart-delay|--timeout)
                    COMPREPLY=($(compgen -W '100ms 500ms 1s 5s 10s 30s 1m' -- "$cur"))
                    return 0 ;;
                --min|--max|-j|--jobs|--crash-limit|--retries|--batch|--shard)
                    return 0 ;;
            esac
            COMPREPLY=($(compgen -W '-c --config --min --max -j --jobs --metrics --tasks --stream
                --keep-order --line-buffer --ungroup --joblog --results --resume --resume-failed --retries --timeout
                --batch --shard --until-empty --bar --stop-timeout --restart-delay --crash-limit
                -v --verbose -q --quiet -h --help --' -- "$cur"))
            ;;
        check)
            case $prev in
                -c|--config)
                    COMPREPLY=($(compgen -f -X '!*.y*ml' -- "$cur") $(compgen -d -- "$cur"))
                    return 0 ;;
            esac
            COMPREPLY=($(compgen -W '-c --config -h --help' -- "$cur"))
            ;;
        sample)
            case $prev in
                -i|--interval)
                    COMPREPLY=($(compgen -W '100ms 250ms 500ms 1s 5s' -- "$cur"))
                    return 0 ;;
                -n|--count)
                    return 0 ;;
            esac
            COMPREPLY=($(compgen -W '-n --count -i --interval --json -h --help' -- "$cur"))
            ;;
        status)
            case $prev in
                --url)
                    COMPREPLY=($(compgen -W 'http://127.0.0.1:9311' -- "$cur"))
                    return 0 ;;
            esac
            COMPREPLY=($(compgen -W '--url --json -h --help' -- "$cur"))
            ;;
        enqueue)
            # The URL first, then the file of task lines.
            if [[ $prev == enqueue ]]; then
                COMPREPLY=($(compgen -W 'redis://127.0.0.1:6379/ -h --help' -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur") $(compgen -W '-' -- "$cur"))
            fi
            ;;
    esac
    return 0
}

complete -F _corral corral

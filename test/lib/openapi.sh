# call NAME METHOD PATH [curl args...]: a request to the gateway at $U, its answer recorded in
# $TMP/x/NAME.{meta,hdr,body} for openapi_tap; its status in $CODE, its body in $BODY.
# UNDOC=undocumented marks an answer docs/openapi.json need not hold (a method the path refuses);
# CALL_MAX_TIME (30) bounds it, a later --max-time among the arguments wins.
call() {
    local name=$1 method=$2 path=$3
    shift 3
    mkdir -p "$TMP/x"
    echo "$method $path ${UNDOC:-}" >"$TMP/x/$name.meta"
    CODE=$(curl -s -X "$method" -D "$TMP/x/$name.hdr" -o "$TMP/x/$name.body" -w '%{http_code}' \
        --max-time "${CALL_MAX_TIME:-30}" "$@" "$U$path")
    BODY=$(cat "$TMP/x/$name.body")
}

# openapi_tap DIR SCOPE: docs/openapi.json checked against every answer a gateway test recorded
# in DIR (NAME.meta: "METHOD PATH [undocumented]", NAME.hdr, NAME.body), by
# test/lib/openapi_check.py, which also requires every documented answer of the paths SCOPE (a
# Python regular expression over the document's path templates) to have been seen; its lines
# as TAP tests.
# The checker's lines are counted as they come (a crash would drop checks silently): one per
# documented answer recorded, plus "every documented answer was seen"; and it must exit 0.
# Source test/lib/tap.sh first.
openapi_tap() {
    local dir=$1 scope=$2 log checker checks=0 recorded line
    log=$(mktemp /tmp/settle-openapi.XXXXXX)
    /usr/bin/python3 test/lib/openapi_check.py docs/openapi.json "$dir" "$scope" >"$log" 2>&1
    checker=$?
    while IFS= read -r line; do
        case "$line" in
            "ok - "*) ok 0 "openapi: ${line#ok - }"; checks=$((checks + 1)) ;;
            "not ok - "*) ok 1 "openapi: ${line#not ok - }"; checks=$((checks + 1)) ;;
            *) echo "# $line" ;;
        esac
    done <"$log"
    rm -f "$log"
    recorded=$(grep -L undocumented "$dir"/*.meta | wc -l)
    is "$checks" "$((recorded + 1))" "openapi: the checker checked each of the $recorded documented answers recorded, and the list of documented ones"
    is "$checker" 0 "openapi: the checker ran to the end and found nothing wrong (exit 0)"
}

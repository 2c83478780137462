# Throwaway certificates for the TLS tests (sourced; run in the test's work directory).
#   ca NAME CN               -> NAME.pem, NAME.key: a self-signed CA
#   leaf NAME CN EXTENSIONS  -> NAME.crt, NAME.key (0600): signed by ca.pem/ca.key, with the
#                               given openssl x509 extension lines
# EC P-256 keys, valid for two days.
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
leaf() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" \
    -out "$1.crt" 2>/dev/null
  chmod 600 "$1.key"
}

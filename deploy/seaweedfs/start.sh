#!/bin/sh
# SeaweedFS with one S3 identity from the environment (no anonymous access).
set -eu
mkdir -p /etc/seaweedfs/run
cat > /etc/seaweedfs/run/s3.json <<JSON
{"identities": [{"name": "chitram",
  "credentials": [{"accessKey": "${S3_ACCESS_KEY}", "secretKey": "${S3_SECRET_KEY}"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
exec weed server -dir=/data -s3 -s3.port=8333 -s3.config=/etc/seaweedfs/run/s3.json

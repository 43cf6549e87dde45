#!/usr/bin/env bash
# The seed recipe as a user would script it with the AWS CLI, one account
# after the other: assume the bootstrap role, create the stack, wait for
# it, read the role ARN from its first output, append a profile.
#
#   bench/recipe.sh ACCOUNTS_FILE TEMPLATE CONFIG_OUT
#
# The AWS CLI runs as `$PYTHON -m awscli`; AWS_ENDPOINT_URL and the
# caller's keys come from the environment (the bench sets them).
set -euo pipefail
accounts=$1 template=$2 config=$3
aws() { "${PYTHON:-python3}" -m awscli "$@"; }
while read -r account; do
  [ -n "$account" ] || continue
  read -r key secret token < <(aws sts assume-role \
    --role-arn "arn:aws:iam::${account}:role/OrganizationAccountAccessRole" \
    --role-session-name recipe \
    --query '[Credentials.AccessKeyId,Credentials.SecretAccessKey,Credentials.SessionToken]' \
    --output text)
  # The account's credentials, for these commands only.
  in_account() { AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_SESSION_TOKEN=$token aws "$@"; }
  in_account cloudformation create-stack --stack-name rolecall-target-role \
    --template-body "file://${template}" --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM >/dev/null
  in_account cloudformation wait stack-create-complete --stack-name rolecall-target-role
  arn=$(in_account cloudformation describe-stacks --stack-name rolecall-target-role \
    --query 'Stacks[0].Outputs[0].OutputValue' --output text)
  printf '[profile %s]\nrole_arn = %s\nsource_profile = default\nregion = us-east-1\n\n' \
    "$account" "$arn" >> "$config"
done < "$accounts"

"""The same rollout with boto3 and a thread pool, as a good engineer would
write it: one session, one STS client shared by the threads, one
CloudFormation client per account (created under a lock: a boto3 session
is not thread-safe), DescribeStacks polled every 0.2 s instead of the
waiter's 30 s, profiles written once at the end.

    python bench/boto3_rollout.py ACCOUNTS_FILE TEMPLATE CONFIG_OUT POOL
"""

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

STACK = "rolecall-target-role"


def main():
    accounts_file, template_file, config_out, pool = sys.argv[1:5]
    accounts = open(accounts_file).read().split()
    template = open(template_file).read()
    session = boto3.session.Session()
    sts = session.client("sts")
    lock = threading.Lock()

    def rollout(account):
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
            RoleSessionName="boto3",
        )["Credentials"]
        with lock:
            cfn = session.client(
                "cloudformation",
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        cfn.create_stack(
            StackName=STACK,
            TemplateBody=template,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        while True:
            stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
            if not stack["StackStatus"].endswith("_IN_PROGRESS"):
                break
            time.sleep(0.2)
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"{account}: {stack['StackStatus']}")
        return account, stack["Outputs"][0]["OutputValue"]

    with ThreadPoolExecutor(max_workers=int(pool)) as executor:
        results = list(executor.map(rollout, accounts))
    with open(config_out, "w") as out:
        for account, arn in results:
            out.write(f"[profile {account}]\nrole_arn = {arn}\nsource_profile = default\nregion = us-east-1\n\n")


if __name__ == "__main__":
    main()

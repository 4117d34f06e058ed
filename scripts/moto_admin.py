"""Drives a moto server (a real AWS API mock) the way an operator drives AWS, with boto3:
an independent client, so what gloo discovers was created by something other than gloo.

Usage: moto_admin.py ENDPOINT COMMAND JSON_ARGS   (prints one JSON document)

Commands:
  bootstrap {}                       an IAM user with an access key and an allow-all policy,
                                     and an allow-all role: the first 5 actions, made while
                                     moto still lets unauthenticated actions through
                                     (INITIAL_NO_AUTH_ACTION_COUNT=5); every later call is signed
                                     and moto checks the signature.
  run {"key", "secret", "count", "tags": {k: v}}    RunInstances with these instance tags
  stop {"key", "secret", "ids": [...]}              StopInstances
  function {"key", "secret", "name", "publish"}     CreateFunction (Python, returns its event)
  lambda-no-docker {}                               Invoke echoes the event (no Docker here)
"""

import io
import json
import sys
import urllib.request
import zipfile

import boto3

endpoint, command, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
REGION = "us-east-1"
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def client(service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=args.get("key", "bootstrap"),
        aws_secret_access_key=args.get("secret", "bootstrap"),
    )


if command == "bootstrap":
    iam = client("iam")
    iam.create_user(UserName="gloo")
    key = iam.create_access_key(UserName="gloo")["AccessKey"]
    iam.put_user_policy(UserName="gloo", PolicyName="all", PolicyDocument=ALLOW_ALL)
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        }
    )
    role = iam.create_role(RoleName="gloo-discovery", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName="gloo-discovery", PolicyName="all", PolicyDocument=ALLOW_ALL)
    print(json.dumps({"key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "role": role}))
elif command == "run":
    ec2 = client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = [{"Key": k, "Value": v} for k, v in args.get("tags", {}).items()]
    spec = [{"ResourceType": "instance", "Tags": tags}] if tags else []
    count = args.get("count", 1)
    out = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, TagSpecifications=spec)
    print(
        json.dumps(
            [
                {"id": i["InstanceId"], "private": i.get("PrivateIpAddress"), "public": i.get("PublicIpAddress")}
                for i in out["Instances"]
            ]
        )
    )
elif command == "stop":
    client("ec2").stop_instances(InstanceIds=args["ids"])
    print("{}")
elif command == "function":
    iam_role = "arn:aws:iam::123456789012:role/gloo-discovery"
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("lambda_function.py", "def lambda_handler(event, context):\n    return event\n")
    f = client("lambda").create_function(
        FunctionName=args["name"],
        Runtime="python3.11",
        Role=iam_role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        Publish=args.get("publish", False),
    )
    print(json.dumps({"arn": f["FunctionArn"], "version": f["Version"]}))
elif command == "lambda-no-docker":
    request = urllib.request.Request(
        endpoint + "/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).read()
    print("{}")
else:
    sys.exit(f"unknown command {command}")

// The AWS CDK app a platform team would otherwise write for bulkhead's prod catalogue
// (bench/peer.py runs `node app.js N` interleaved with `python -m bulkhead plan`).
// Per database, as components/prod/ builds it: its own KMS key, database and client
// security groups with the ingress between them, a parameter group, a DatabaseInstance
// with a generated master secret, replicas (k % 3), a bootstrap Lambda behind a custom
// resource, an IAM managed policy for the service's rds-db:connect. Per stack: the
// VPC (isolated subnets), interface endpoints, backup plans per tier. CloudFormation
// allows 500 resources per stack, so databases are split over stacks (DBS_PER_STACK).
"use strict";
const path = require("path");
const cdk = require("aws-cdk-lib");
const ec2 = require("aws-cdk-lib/aws-ec2");
const rds = require("aws-cdk-lib/aws-rds");
const kms = require("aws-cdk-lib/aws-kms");
const iam = require("aws-cdk-lib/aws-iam");
const lambda = require("aws-cdk-lib/aws-lambda");
const backup = require("aws-cdk-lib/aws-backup");
const events = require("aws-cdk-lib/aws-events");
const cloudwatch = require("aws-cdk-lib/aws-cloudwatch");
const cwActions = require("aws-cdk-lib/aws-cloudwatch-actions");
const sns = require("aws-cdk-lib/aws-sns");

const N = parseInt(process.argv[2] || "10", 10);
const OUT = process.argv[3] || path.join(__dirname, `cdk.out-${N}`);
// `node app.js N OUT alarms` (bench/peer.py --alarms): what issue 24 adds to bulkhead (components/prod/
// alarms.py): per database CloudWatch alarms on CPU, FreeStorageSpace, DatabaseConnections,
// FreeableMemory and ReplicaLag per replica, notifying an SNS topic (KMS-encrypted) that an RDS
// event subscription also feeds, once per catalogue. Off by default until bulkhead has them too.
const ALARMS = process.argv[4] === "alarms";
const DBS_PER_STACK = 15;  // about 24 resources each (29 with alarms): at most ~370 (~440) per stack
const ENV = { account: "123456789012", region: "eu-west-1" };
const TIERS = ["critical", "standard", "standard"];

const app = new cdk.App({ outdir: OUT });
const network = new cdk.Stack(app, "network", { env: ENV });
const vpc = new ec2.Vpc(network, "vpc", {
  maxAzs: 3, natGateways: 0,
  subnetConfiguration: [{ name: "db", subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
});
for (const svc of ["secretsmanager", "kms", "logs", "sts", "rds"]) {
  vpc.addInterfaceEndpoint(`endpoint-${svc}`, { service: new ec2.InterfaceVpcEndpointAwsService(svc) });
}

let topic = null;
if (ALARMS) {
  const topicKey = new kms.Key(network, "alarms-key", { enableKeyRotation: true });
  topic = new sns.Topic(network, "alarms", { masterKey: topicKey });
  new rds.CfnEventSubscription(network, "rds-events", {
    snsTopicArn: topic.topicArn, sourceType: "db-instance", enabled: true,
    eventCategories: ["availability", "failover", "failure", "low storage", "maintenance", "recovery"],
  });
}

function alarm(stack, id, metric, threshold, comparison) {
  const a = new cloudwatch.Alarm(stack, id, {
    metric, threshold, evaluationPeriods: 3, comparisonOperator: comparison,
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
  a.addAlarmAction(new cwActions.SnsAction(topic));
  return a;
}

function databaseStack(first, count) {
  const stack = new cdk.Stack(app, `databases-${first}`, { env: ENV });
  const plans = {};
  for (const tier of ["critical", "standard"]) {
    plans[tier] = new backup.BackupPlan(stack, `backup-${tier}`, {
      backupPlanRules: [new backup.BackupPlanRule({
        ruleName: "daily", deleteAfter: cdk.Duration.days(tier === "critical" ? 35 : 14),
        scheduleExpression: events.Schedule.cron({ hour: "3", minute: "0" }),
      })],
    });
  }
  for (let k = first; k < first + count; k++) {
    const name = `svc${String(k).padStart(3, "0")}`;
    const tier = TIERS[k % 3];
    const key = new kms.Key(stack, `${name}-key`, { enableKeyRotation: true, alias: `alias/bulkhead/${name}` });
    const dbSg = new ec2.SecurityGroup(stack, `${name}-db`, { vpc, allowAllOutbound: false });
    const clientSg = new ec2.SecurityGroup(stack, `${name}-client`, { vpc, allowAllOutbound: false });
    dbSg.addIngressRule(clientSg, ec2.Port.tcp(5432), `${name} clients`);
    clientSg.addEgressRule(dbSg, ec2.Port.tcp(5432), `${name} database`);
    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 });
    const parameterGroup = new rds.ParameterGroup(stack, `${name}-params`, {
      engine, parameters: { "rds.force_ssl": "1", log_connections: "1" },
    });
    const primary = new rds.DatabaseInstance(stack, `${name}-primary`, {
      engine, vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, securityGroups: [dbSg],
      instanceType: new ec2.InstanceType("r6g.large"), allocatedStorage: 50, maxAllocatedStorage: 500,
      storageEncryptionKey: key, multiAz: true, iamAuthentication: true, parameterGroup,
      credentials: rds.Credentials.fromGeneratedSecret("bulkhead_admin", { encryptionKey: key }),
      backupRetention: cdk.Duration.days(tier === "critical" ? 14 : 7), deletionProtection: true,
      cloudwatchLogsExports: ["postgresql"], removalPolicy: cdk.RemovalPolicy.SNAPSHOT,
    });
    const GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
    const LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD;
    if (ALARMS) {
      alarm(stack, `${name}-cpu`, primary.metricCPUUtilization(), 80, GT);
      alarm(stack, `${name}-storage`, primary.metricFreeStorageSpace(), 5 * 1024 ** 3, LT);
      alarm(stack, `${name}-connections`, primary.metricDatabaseConnections(), 80, GT);
      alarm(stack, `${name}-memory`, primary.metricFreeableMemory(), 256 * 1024 ** 2, LT);
    }
    for (let r = 0; r < k % 3; r++) {
      const replica = new rds.DatabaseInstanceReadReplica(stack, `${name}-replica-${r + 1}`, {
        sourceDatabaseInstance: primary, instanceType: new ec2.InstanceType("r6g.large"), vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, securityGroups: [dbSg], storageEncryptionKey: key,
      });
      if (ALARMS) alarm(stack, `${name}-replica-${r + 1}-lag`, replica.metric("ReplicaLag"), 300, GT);
    }
    const bootstrapSg = new ec2.SecurityGroup(stack, `${name}-bootstrap-sg`, { vpc });
    dbSg.addIngressRule(bootstrapSg, ec2.Port.tcp(5432), `${name} bootstrap`);
    const bootstrap = new lambda.Function(stack, `${name}-bootstrap`, {
      runtime: lambda.Runtime.PYTHON_3_12, handler: "index.handler", vpc, securityGroups: [bootstrapSg],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, timeout: cdk.Duration.minutes(5),
      code: lambda.Code.fromInline("def handler(event, context):\n    return {'PhysicalResourceId': 'roles'}\n"),
      environment: { DATABASE: name, SECRET_ARN: primary.secret.secretArn },
    });
    primary.secret.grantRead(bootstrap);
    new cdk.CustomResource(stack, `${name}-roles`, {
      serviceToken: bootstrap.functionArn, properties: { database: name, owner: `service-${Math.floor(k / 2)}` },
    });
    new iam.ManagedPolicy(stack, `${name}-connect`, {
      statements: [new iam.PolicyStatement({
        actions: ["rds-db:connect"],
        resources: [cdk.Stack.of(stack).formatArn({
          service: "rds-db", resource: "dbuser", resourceName: `${primary.instanceResourceId}/${name}_app`,
          arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME,
        })],
      })],
    });
    plans[tier === "critical" ? "critical" : "standard"].addSelection(`${name}-selection`, {
      resources: [backup.BackupResource.fromRdsDatabaseInstance(primary)],
    });
  }
}

for (let first = 0; first < N; first += DBS_PER_STACK) {
  databaseStack(first, Math.min(DBS_PER_STACK, N - first));
}
const assembly = app.synth();
let resources = 0;
for (const s of assembly.stacks) resources += Object.keys(s.template.Resources || {}).length;
console.log(JSON.stringify({ stacks: assembly.stacks.length, resources }));

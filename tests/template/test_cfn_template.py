"""devkit.cfn_template: short-form tags, YAML pitfalls and the helpers the emulator and these tests rely on."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from stack_webhook_fanout_tools.devkit.cfn_template import (
    TemplateError,
    function_environment,
    load_template,
    table_key_schema,
    topic_logical_ids,
    ttl_attribute,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.template

SHORT_FORMS = """
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  Both: !And [!Condition IsProd, !Not [!Equals [!Ref Env, dev]]]
  Either: !Or [!Condition IsProd, !Condition Both]
Resources:
  Thing:
    Type: AWS::SNS::Topic
    Properties:
      A: !Ref Env
      B: !Sub "${AWS::StackName}-x"
      C: !Sub ["${X}-y", {X: !Ref Env}]
      D: !GetAtt Table.Arn
      E: !GetAtt Db.Endpoint.Address
      F: !GetAtt [Table, StreamArn]
      G: !If [IsProd, !Ref AWS::NoValue, x]
      H: !Join ["", [!Select [0, !Split [",", !ImportValue shared-list]]]]
      I: !FindInMap [Map, !Ref AWS::Region, key]
      J: !Base64 hello
      K: !Cidr [!GetAtt Vpc.CidrBlock, 2, 8]
      L: !GetAZs ""
      M: 2012-10-17
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_short_forms_become_long_forms(tmp_path: Path) -> None:
    template = load_template(_write(tmp_path, SHORT_FORMS))

    conditions = template["Conditions"]
    assert conditions["IsProd"] == {"Fn::Equals": [{"Ref": "Env"}, "prod"]}
    assert conditions["Both"] == {
        "Fn::And": [{"Condition": "IsProd"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "Env"}, "dev"]}]}]
    }
    assert conditions["Either"] == {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "Both"}]}
    props = template["Resources"]["Thing"]["Properties"]
    assert props["A"] == {"Ref": "Env"}
    assert props["B"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert props["C"] == {"Fn::Sub": ["${X}-y", {"X": {"Ref": "Env"}}]}
    assert props["D"] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert props["E"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}
    assert props["F"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert props["G"] == {"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, "x"]}
    assert props["H"] == {
        "Fn::Join": ["", [{"Fn::Select": [0, {"Fn::Split": [",", {"Fn::ImportValue": "shared-list"}]}]}]]
    }
    assert props["I"] == {"Fn::FindInMap": ["Map", {"Ref": "AWS::Region"}, "key"]}
    assert props["J"] == {"Fn::Base64": "hello"}
    assert props["K"] == {"Fn::Cidr": [{"Fn::GetAtt": ["Vpc", "CidrBlock"]}, 2, 8]}
    assert props["L"] == {"Fn::GetAZs": ""}
    # CloudFormation keeps it a string; plain YAML 1.1 would make it a datetime.date
    assert props["M"] == "2012-10-17"


def test_long_forms_and_json_load_unchanged(tmp_path: Path) -> None:
    template = load_template(_write(tmp_path, '{"Resources": {"T": {"Type": "X", "Properties": {"A": {"Ref": "B"}}}}}'))
    assert template == {"Resources": {"T": {"Type": "X", "Properties": {"A": {"Ref": "B"}}}}}


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="duplicate key 'Type'"):
        load_template(_write(tmp_path, "Resources:\n  T:\n    Type: A\n    Type: B\n"))


@pytest.mark.parametrize("text", ["- a list\n", "just a string\n", "key: [unclosed\n"])
def test_non_templates_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(TemplateError):
        load_template(_write(tmp_path, text))


def test_helpers_read_the_parts_they_name(tmp_path: Path) -> None:
    template = load_template(
        _write(
            tmp_path,
            """
Globals:
  Function:
    Environment:
      Variables: {SHARED: g, OVERRIDDEN: g}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: gsi_pk, AttributeType: N}
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: false}
  One:
    Type: AWS::SNS::Topic
    Properties: {Tags: [{Key: "stack-webhook-fanout:event-type", Value: one}]}
  Two:
    Type: AWS::SNS::Topic
    Properties: {Tags: [{Key: "stack-webhook-fanout:event-type", Value: two}]}
  Alarms:
    Type: AWS::SNS::Topic
    Properties: {Tags: [{Key: "stack-webhook-fanout:purpose", Value: alarms}]}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables: {OWN: !Ref One, OVERRIDDEN: f}
""",
        )
    )
    key_schema, attribute_definitions = table_key_schema(template, "Table")
    assert key_schema == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert attribute_definitions == [{"AttributeName": "pk", "AttributeType": "S"}]  # only key attributes
    assert ttl_attribute(template, "Table") is None  # disabled
    assert topic_logical_ids(template) == {"One", "Two"}  # event topics only: the alarms topic is not one
    assert function_environment(template, "Fn") == {"SHARED": "g", "OVERRIDDEN": "f", "OWN": {"Ref": "One"}}
    with pytest.raises(TemplateError, match="not a AWS::DynamoDB::Table"):
        table_key_schema(template, "One")
    with pytest.raises(TemplateError, match="no resource 'Missing'"):
        function_environment(template, "Missing")


def test_importing_the_module_does_not_import_yaml() -> None:
    # the devkit must stay import-cheap; PyYAML is loaded only when a template is
    code = "import sys, stack_webhook_fanout_tools.devkit.cfn_template; sys.exit('yaml' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

import Testing
@testable import Shared

@Suite struct JSONTests {
    @Test func roundTripsEveryKind() throws {
        let value: JSON = ["a": 1, "b": [true, false, nil], "c": "x\"y\u{e9}", "d": 0.1, "e": ["f": -3]]
        let text = value.serialized()
        #expect(text == #"{"a":1,"b":[true,false,null],"c":"x\"yé","d":0.10000000000000001,"e":{"f":-3}}"#)
        #expect(try JSON.parse(text) == value)
    }

    @Test func parseErrorNamesLineAndColumn() {
        #expect {
            try JSON.parse("{\n  \"a\": [1, 2,\n}")
        } throws: { error in
            guard let error = error as? JSONParseError else { return false }
            return error.line == 3 && error.column >= 1 && !error.reason.isEmpty
        }
    }

    @Test func integersBeyond64BitsReadAsDoubles() throws {
        // Valid JSON that jansson alone refuses ("too big integer").
        let value = try JSON.parse(#"{"big": 61570488191094800384, "negative": -150491452988466561024, "small": 3}"#)
        #expect(value["big"] == .double(61570488191094800384) && value["negative"] == .double(-150491452988466561024))
        #expect(value["small"]?.intValue == 3)
    }

    @Test func readerNamesTheFieldThatIsWrong() throws {
        let reader = try JSONObjectReader(JSON.parse(#"{"a": {"b": "x"}}"#))
        #expect(throws: JSONFieldError.self) { try reader.object("a").double("b") }
        do {
            _ = try reader.object("a").double("b")
        } catch {
            #expect(error.description == "field 'a.b': expected a number, got a string")
        }
        #expect(try reader.optional("missing", JSONObjectReader.string) == nil)
    }
}

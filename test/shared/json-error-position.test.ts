import { jsonErrorPosition } from '../../shared/json-error-position';

describe('jsonErrorPosition', () => {
  it.each([
    ['{"a": 1,}', 1, 9, /property name/],
    ['{\n  "a": 1\n  "b": 2\n}', 3, 3, /expected ',' or '}'/],
    ['[1, 2,, 3]', 1, 7, /expected a value/],
    ['{"a": tru}', 1, 7, /true\?/],
    ['{"a": "line\nbreak"}', 1, 12, /control character U\+000A/],
    ['{"a": "\\x"}', 1, 8, /escape/],
    ['{"a": 01}', 1, 8, /expected ',' or '}'/],
    ['{"a": 1.}', 1, 9, /decimal point/],
    ['{"a": -}', 1, 8, /digit/],
    ['{"a": 1e}', 1, 9, /exponent/],
    ['{"a": "open', 1, 7, /not closed/],
    ['{"a": [1, 2}', 1, 12, /expected ',' or '\]'/],
    ['{"a" 1}', 1, 6, /':'/],
    ['{} {}', 1, 4, /end of the text/],
    ['', 1, 1, /found the end of the text/],
    ['{"a":\n', 2, 1, /found the end of the text/],
    ["{'a': 1}", 1, 2, /double quotes/],
  ])('%j: line %i, column %i', (text, line, column, problem) => {
    expect(() => JSON.parse(text)).toThrow();
    const at = jsonErrorPosition(text);
    expect(at).toMatchObject({ line, column });
    expect(at!.problem).toMatch(problem);
  });

  it.each(['{}', '[]', '0', '-0.5e+3', '"\\u00e9\\n"', '{"a": [true, false, null, {"b": "c"}]}', ' \n\t{ "a" : 1 } \r\n', '[[[[[[[[[]]]]]]]]]'])(
    'finds nothing wrong with %j, as JSON.parse agrees',
    (text) => {
      expect(() => JSON.parse(text)).not.toThrow();
      expect(jsonErrorPosition(text)).toBeUndefined();
    },
  );

  it('handles nesting far deeper than any stack, in linear time', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(199_999);
    expect(jsonErrorPosition(deep)).toMatchObject({ line: 1, column: 400_000 });
  });
});
